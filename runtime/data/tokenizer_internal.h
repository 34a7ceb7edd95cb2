/*
 * tokenizer_internal.h - the tokenizer's tables, shared by the encoder
 * (tokenizer.c) and the decoder (tokenizer_decode.c); internal to
 * runtime/data.
 */
#ifndef TSR_RUNTIME_TOKENIZER_INTERNAL_H
#define TSR_RUNTIME_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

enum { KIND_BYTE = 0, KIND_GPT2 = 1, BYTE_EOD = 256 };

typedef struct vocab_slot {
    int64_t key_off; /* -1: empty */
    uint32_t key_len;
    int32_t id;
} vocab_slot;

typedef struct merge_slot {
    uint64_t pair; /* left << 32 | right; UINT64_MAX: empty */
    int32_t rank;
    int32_t merged;
} merge_slot;

typedef struct heap_entry {
    int32_t rank, pos;
} heap_entry;

struct tsr_tokenizer {
    int kind;
    int64_t vocab_size;
    int32_t eod;
    /* gpt2 */
    char *keys; /* every vocabulary string back to back */
    int64_t keys_len, keys_cap;
    vocab_slot *vocab;
    size_t vocab_cap, vocab_count;
    merge_slot *merges;
    size_t merges_cap, merges_count;
    int32_t byte_id[256];
    /* encode scratch */
    int32_t *sym, *next, *prev;
    heap_entry *heap;
    size_t scratch_cap;
};

#endif /* TSR_RUNTIME_TOKENIZER_INTERNAL_H */
