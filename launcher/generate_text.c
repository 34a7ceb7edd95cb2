/*
 * generate_text.c - prompts in, text out, for `tessera generate`
 * (generate_text.h).
 */
#include "generate_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

static bool arithmetic_data(const char *data_path)
{
    return data_path != NULL && (strncmp(data_path, "synthetic:addition", 18) == 0 ||
                                 strncmp(data_path, "synthetic:subtraction", 21) == 0);
}

tsr_status tsr_gen_text_open(tsr_gen_tokenizer kind, const char *data_path, int64_t vocab,
                             const char *vocab_file, const char *merge_file, tsr_gen_text *out)
{
    memset(out, 0, sizeof *out);
    out->eod = -1;
    if (kind == TSR_GEN_TOKENIZER_AUTO) {
        /* the synthetic tasks have 15 tokens at most */
        if (!arithmetic_data(data_path) || vocab > 15)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "the checkpoint was trained on %s: give the tokenizer it used "
                                 "(--tokenizer-type byte, or gpt2 with --vocab-file and "
                                 "--merge-file)",
                                 data_path != NULL ? data_path : "an unnamed dataset");
        kind = TSR_GEN_TOKENIZER_ARITHMETIC;
    }
    bool files = vocab_file != NULL || merge_file != NULL;
    if (files && kind != TSR_GEN_TOKENIZER_GPT2)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--vocab-file and --merge-file belong to --tokenizer-type gpt2");
    out->kind = kind;
    switch (kind) {
    case TSR_GEN_TOKENIZER_ARITHMETIC:
        out->eod = tsr_arithmetic_token('\n');
        return TSR_OK;
    case TSR_GEN_TOKENIZER_BYTE: {
        tsr_status st = tsr_tokenizer_byte(&out->tok);
        out->eod = st == TSR_OK ? tsr_tokenizer_eod(out->tok) : -1;
        return st;
    }
    case TSR_GEN_TOKENIZER_GPT2: {
        if (vocab_file == NULL || merge_file == NULL)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--tokenizer-type gpt2 needs --vocab-file vocab.json and "
                                 "--merge-file merges.txt");
        tsr_status st = tsr_tokenizer_gpt2_open(vocab_file, merge_file, &out->tok);
        out->eod = st == TSR_OK ? tsr_tokenizer_eod(out->tok) : -1;
        return st;
    }
    case TSR_GEN_TOKENIZER_AUTO:
        break;
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG, "unknown tokenizer");
}

void tsr_gen_text_close(tsr_gen_text *t)
{
    tsr_tokenizer_destroy(t->tok);
    memset(t, 0, sizeof *t);
}

tsr_status tsr_gen_text_decode(const tsr_gen_text *t, const int32_t *ids, int64_t n, char **text)
{
    if (t->kind != TSR_GEN_TOKENIZER_ARITHMETIC) {
        size_t len = 0;
        return tsr_tokenizer_decode(t->tok, ids, n, text, &len);
    }
    *text = malloc((size_t)n + 1);
    if (*text == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++)
        (*text)[i] = tsr_addition_token_char(ids[i]);
    (*text)[n] = '\0';
    return TSR_OK;
}

static tsr_status add_prompt(tsr_gen_prompts *p, const tsr_gen_text *t, const char *text,
                             size_t len, int64_t line, int64_t vocab)
{
    if (len == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "prompt %lld is empty; a prompt needs at least one token",
                             (long long)line);
    tsr_gen_prompt *grown = realloc(p->items, (size_t)(p->count + 1) * sizeof *grown);
    if (grown == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading prompts");
    p->items = grown;
    tsr_gen_prompt *g = &p->items[p->count++];
    memset(g, 0, sizeof *g);
    g->text = malloc(len + 1);
    if (g->text == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading prompts");
    memcpy(g->text, text, len);
    g->text[len] = '\0';
    tsr_token_buffer ids = {0};
    tsr_status st = TSR_OK;
    if (t->kind == TSR_GEN_TOKENIZER_ARITHMETIC) {
        for (size_t i = 0; i < len && st == TSR_OK; i++) {
            int32_t id = tsr_arithmetic_token(text[i]);
            st = id < 0 ? tsr_error_set(TSR_ERR_INVALID_ARG,
                                        "prompt %lld has '%c', which the synthetic tasks' "
                                        "tokens (0-9 + - = |) do not spell",
                                        (long long)line, text[i])
                        : tsr_token_buffer_push(&ids, id);
        }
    } else {
        st = tsr_tokenizer_encode(t->tok, text, len, &ids);
    }
    for (int64_t i = 0; st == TSR_OK && i < ids.count; i++)
        if (ids.ids[i] >= vocab)
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "prompt %lld has token id %d, outside the model's vocabulary of "
                               "%lld; is this the tokenizer it was trained with?",
                               (long long)line, ids.ids[i], (long long)vocab);
    g->ids = ids.ids;
    g->len = ids.count;
    if (st == TSR_OK && g->len == 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG, "prompt %lld has no tokens", (long long)line);
    return st;
}

tsr_status tsr_gen_prompts_read(const tsr_gen_text *t, const char *prompt, const char *prompt_file,
                                int64_t vocab, tsr_gen_prompts *out)
{
    memset(out, 0, sizeof *out);
    if (prompt_file == NULL)
        return add_prompt(out, t, prompt, strlen(prompt), 1, vocab);
    FILE *f = fopen(prompt_file, "r");
    if (f == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--prompt-file %s: %s", prompt_file,
                             strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t number = 0;
    tsr_status st = TSR_OK;
    while (st == TSR_OK && (n = getline(&line, &cap, f)) >= 0) {
        number++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        st = add_prompt(out, t, line, (size_t)n, number, vocab);
    }
    free(line);
    fclose(f);
    if (st == TSR_OK && out->count == 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG, "--prompt-file %s holds no prompt", prompt_file);
    return st;
}

tsr_status tsr_gen_prompts_held_out(const tsr_config *cfg, int64_t n, tsr_gen_prompts *out)
{
    memset(out, 0, sizeof *out);
    if (!arithmetic_data(cfg->data_path))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--held-out takes problems of a synthetic arithmetic task, but the "
                             "model trained on %s; give --data-path synthetic:addition:D",
                             cfg->data_path != NULL ? cfg->data_path : "an unnamed dataset");
    tsr_dataset *ds = NULL;
    tsr_status st = tsr_dataset_open(cfg, &ds);
    if (st != TSR_OK)
        return st;
    int d = ds->digits, t = ds->seq_length, problem = 3 * d + 4, question = 2 * d + 2;
    int per_sample = (t + 1) / problem;
    int32_t *tokens = malloc((size_t)(t + 1) * sizeof *tokens);
    int32_t *targets = malloc((size_t)t * sizeof *targets);
    float *mask = malloc((size_t)t * sizeof *mask);
    out->items = calloc((size_t)n, sizeof *out->items);
    if (tokens == NULL || targets == NULL || mask == NULL || out->items == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t sample = 0; st == TSR_OK && out->count < n; sample++) {
        st = tsr_dataset_batch(ds, TSR_SPLIT_VALID, sample, 1, tokens, targets, mask);
        for (int p = 0; st == TSR_OK && p < per_sample && out->count < n; p++) {
            const int32_t *s = tokens + p * problem;
            tsr_gen_prompt *g = &out->items[out->count++];
            g->ids = malloc((size_t)question * sizeof *g->ids);
            g->expected = malloc((size_t)(problem - question) * sizeof *g->expected);
            g->text = malloc((size_t)question + 1);
            if (g->ids == NULL || g->expected == NULL || g->text == NULL) {
                st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            g->len = question;
            g->expected_len = problem - question;
            memcpy(g->ids, s, (size_t)question * sizeof *s);
            memcpy(g->expected, s + question, (size_t)g->expected_len * sizeof *s);
            for (int i = 0; i < question; i++)
                g->text[i] = tsr_addition_token_char(s[i]);
            g->text[question] = '\0';
        }
    }
    free(tokens);
    free(targets);
    free(mask);
    tsr_dataset_close(ds);
    return st;
}

void tsr_gen_prompts_free(tsr_gen_prompts *p)
{
    for (int64_t i = 0; i < p->count; i++) {
        free(p->items[i].text);
        free(p->items[i].ids);
        free(p->items[i].expected);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}
