/*
 * generate_text.h - what `tessera generate` reads and prints: prompts (a
 * flag, a file of one per line, or held-out problems of a synthetic task)
 * as token ids, and ids back to text, through the tokenizer the model was
 * trained with (the synthetic tasks' characters, bytes, or GPT-2's BPE).
 */
#ifndef TSR_LAUNCHER_GENERATE_TEXT_H
#define TSR_LAUNCHER_GENERATE_TEXT_H

#include <stdint.h>

#include "data/tokenizer.h"
#include "tessera/config.h"

typedef enum tsr_gen_tokenizer {
    TSR_GEN_TOKENIZER_AUTO = 0, /* arithmetic for a model of the synthetic tasks */
    TSR_GEN_TOKENIZER_ARITHMETIC,
    TSR_GEN_TOKENIZER_BYTE,
    TSR_GEN_TOKENIZER_GPT2
} tsr_gen_tokenizer;

typedef struct tsr_gen_text {
    tsr_gen_tokenizer kind;
    tsr_tokenizer *tok; /* byte and gpt2 */
    int32_t eod;        /* the tokenizer's end of document (-1: none) */
} tsr_gen_text;

/* kind AUTO resolves from data_path (the model's training data) and the
 * model's vocabulary: the synthetic tasks' characters, else an error
 * asking for the tokenizer. */
tsr_status tsr_gen_text_open(tsr_gen_tokenizer kind, const char *data_path, int64_t vocab,
                             const char *vocab_file, const char *merge_file, tsr_gen_text *out);
void tsr_gen_text_close(tsr_gen_text *t);
/* The text of ids (a heap string the caller frees). */
tsr_status tsr_gen_text_decode(const tsr_gen_text *t, const int32_t *ids, int64_t n, char **text);

/* One prompt: its text and ids; held-out problems also have the expected
 * continuation (the answer and its closing newline). */
typedef struct tsr_gen_prompt {
    char *text;
    int32_t *ids;
    int64_t len;
    int32_t *expected;
    int64_t expected_len;
} tsr_gen_prompt;

typedef struct tsr_gen_prompts {
    tsr_gen_prompt *items;
    int64_t count;
} tsr_gen_prompts;

/* From --prompt TEXT (prompt_file NULL) or each line of --prompt-file.
 * Empty prompts, characters the tokenizer has no id for, and ids outside
 * the model's vocabulary are TSR_ERR_INVALID_ARG naming the line. */
tsr_status tsr_gen_prompts_read(const tsr_gen_text *t, const char *prompt, const char *prompt_file,
                                int64_t vocab, tsr_gen_prompts *out);
/* The questions "a+b=" of the first n validation problems of cfg's
 * synthetic task (cfg->data_path, seq_length, seed as the model trained
 * on them), each expecting its answer. */
tsr_status tsr_gen_prompts_held_out(const tsr_config *cfg, int64_t n, tsr_gen_prompts *out);
void tsr_gen_prompts_free(tsr_gen_prompts *p);

#endif /* TSR_LAUNCHER_GENERATE_TEXT_H */
