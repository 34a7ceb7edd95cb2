/*
 * tokenizer_decode.c - ids back to text (tokenizer.h): the byte
 * tokenizer's ids are the bytes; a GPT-2 id is its vocabulary string,
 * whose characters are GPT-2's byte symbols, each mapped back to its byte.
 * The end-of-document id and ids outside the vocabulary add nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static tsr_status append(char **text, size_t *len, size_t *cap, const char *bytes, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t next = (*cap > 0 ? *cap * 2 : 256) + n;
        char *p = realloc(*text, next);
        if (p == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory decoding tokens");
        *text = p;
        *cap = next;
    }
    memcpy(*text + *len, bytes, n);
    *len += n;
    (*text)[*len] = '\0';
    return TSR_OK;
}

/* The next code point of s[0..n) at *pos (1-3 byte UTF-8: GPT-2's symbols
 * are below U+0800); -1 for a malformed sequence. */
static int32_t next_code_point(const unsigned char *s, size_t n, size_t *pos)
{
    unsigned char c = s[*pos];
    if (c < 0x80) {
        (*pos)++;
        return c;
    }
    if ((c & 0xe0) == 0xc0 && *pos + 1 < n) {
        int32_t cp = ((c & 0x1f) << 6) | (s[*pos + 1] & 0x3f);
        *pos += 2;
        return cp;
    }
    (*pos)++;
    return -1;
}

tsr_status tsr_tokenizer_decode(const tsr_tokenizer *t, const int32_t *ids, int64_t n, char **text,
                                size_t *len)
{
    size_t cap = 0;
    *text = NULL;
    *len = 0;
    tsr_status st = append(text, len, &cap, "", 0);
    if (t->kind == KIND_BYTE) {
        for (int64_t i = 0; i < n && st == TSR_OK; i++)
            if (ids[i] >= 0 && ids[i] < 256) {
                char b = (char)ids[i];
                st = append(text, len, &cap, &b, 1);
            }
        if (st != TSR_OK) {
            free(*text);
            *text = NULL;
        }
        return st;
    }
    /* id -> vocabulary slot, and symbol -> byte */
    const vocab_slot **by_id = calloc((size_t)t->vocab_size + 1, sizeof *by_id);
    int32_t byte_of[512];
    for (int i = 0; i < 512; i++)
        byte_of[i] = -1;
    for (int b = 0; b < 256; b++)
        byte_of[tsr_gpt2_byte_symbol((unsigned char)b)] = b;
    if (by_id == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory decoding tokens");
    for (size_t i = 0; st == TSR_OK && i < t->vocab_cap; i++)
        if (t->vocab[i].key_off >= 0 && t->vocab[i].id >= 0 && t->vocab[i].id < t->vocab_size)
            by_id[t->vocab[i].id] = &t->vocab[i];
    for (int64_t i = 0; i < n && st == TSR_OK; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size || ids[i] == t->eod || by_id[ids[i]] == NULL)
            continue;
        const unsigned char *key = (const unsigned char *)t->keys + by_id[ids[i]]->key_off;
        size_t klen = by_id[ids[i]]->key_len, pos = 0;
        while (pos < klen && st == TSR_OK) {
            int32_t cp = next_code_point(key, klen, &pos);
            if (cp >= 0 && cp < 512 && byte_of[cp] >= 0) {
                char b = (char)byte_of[cp];
                st = append(text, len, &cap, &b, 1);
            }
        }
    }
    free(by_id);
    if (st != TSR_OK) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return st;
}
