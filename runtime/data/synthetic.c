/*
 * synthetic.c - built-in datasets for demos, tests and benchmarks.
 *
 * synthetic:addition[:D] packs problems "a+b=c\n" with D-digit operands
 * (default 3) into each sample. The answer is written least significant
 * digit first and zero-padded to D+1 digits ("123+456=9750"): the carry then
 * flows in reading order, which a small causal model learns in seconds.
 * Only the answer digits and the closing newline count in the loss.
 * Operands are drawn from the counter-based RNG keyed by (seed, split), so
 * the validation problems never coincide in sequence with training ones.
 *
 * Under --prefix-lm each question "a+b=" is a prefix; under
 * --reset-attention-mask each problem is a document (the newline ends it).
 *
 * synthetic:subtraction[:D] is the same with "a-b=c", a >= b (the operands
 * drawn as for addition, then ordered), the difference written the same
 * way (D+1 digits, least significant first: the borrow flows in reading
 * order as the carry does). Its '-' is token 14, so both tasks share one
 * layout; a model trained on addition with --vocab-size 15 has a row for
 * it and can be fine-tuned to subtraction.
 *
 * synthetic:random draws uniform tokens, every target counted: a workload
 * for benchmarks with a known best loss of log(vocab).
 */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "tessera/rng.h"

enum {
    TOK_PLUS = 10,
    TOK_EQUALS = 11,
    TOK_NEWLINE = 12,
    TOK_PAD = 13,
    ADDITION_VOCAB = 14,
    TOK_MINUS = 14,
    SUBTRACTION_VOCAB = 15
};

char tsr_addition_token_char(int32_t token)
{
    if (token >= 0 && token <= 9)
        return (char)('0' + token);
    switch (token) {
    case TOK_PLUS:
        return '+';
    case TOK_EQUALS:
        return '=';
    case TOK_NEWLINE:
        return '|';
    case TOK_MINUS:
        return '-';
    default:
        return '.';
    }
}

int32_t tsr_arithmetic_token(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    switch (c) {
    case '+':
        return TOK_PLUS;
    case '-':
        return TOK_MINUS;
    case '=':
        return TOK_EQUALS;
    case '|':
    case '\n':
        return TOK_NEWLINE;
    default:
        return -1;
    }
}

static const char *const split_names[] = {"train", "valid", "test"};

static int64_t pow10i(int d)
{
    int64_t p = 1;
    while (d-- > 0)
        p *= 10;
    return p;
}

/* Writes `value` as `width` digits, most significant first. */
static void put_digits(int32_t *out, int64_t value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (int32_t)(value % 10);
        value /= 10;
    }
}

static tsr_status addition_sample(const tsr_dataset *ds, tsr_split split, int64_t index,
                                  int32_t *tokens, float *mask)
{
    int d = ds->digits, t = ds->seq_length;
    int problem_len = 2 * d + 2 + (d + 1) + 1; /* a + b = c \n */
    int per_sample = (t + 1) / problem_len;
    uint64_t key = tsr_rng_key(ds->seed, split_names[split]);
    key = tsr_rng_key_mix(key, 0xadd);
    int64_t range = pow10i(d);
    for (int i = 0; i <= t; i++)
        tokens[i] = TOK_PAD;
    memset(mask, 0, (size_t)t * sizeof *mask);
    for (int p = 0; p < per_sample; p++) {
        uint64_t problem = (uint64_t)index * (uint64_t)per_sample + (uint64_t)p;
        uint32_t r[4];
        tsr_rng_philox(key, 2, problem, r);
        int64_t a = (int64_t)((((uint64_t)r[0] << 32) | r[1]) % (uint64_t)range);
        int64_t b = (int64_t)((((uint64_t)r[2] << 32) | r[3]) % (uint64_t)range);
        if (ds->subtract && a < b) {
            int64_t t = a;
            a = b;
            b = t;
        }
        int64_t c = ds->subtract ? a - b : a + b;
        int32_t *s = tokens + p * problem_len;
        put_digits(s, a, d);
        s[d] = ds->subtract ? TOK_MINUS : TOK_PLUS;
        put_digits(s + d + 1, b, d);
        s[2 * d + 1] = TOK_EQUALS;
        for (int k = 0; k <= d; k++) { /* least significant digit first */
            s[2 * d + 2 + k] = (int32_t)(c % 10);
            c /= 10;
        }
        s[3 * d + 3] = TOK_NEWLINE;
        /* target at position j is tokens[j+1]: the answer digits and the
         * newline are predicted from the position before each of them */
        int first_answer = p * problem_len + 2 * d + 2;
        for (int k = 0; k <= d + 1; k++)
            mask[first_answer + k - 1] = 1.0f;
    }
    (void)ds;
    return TSR_OK;
}

/* The question "a+b=" of every problem is its prefix. */
static tsr_status addition_prefix(const tsr_dataset *ds, tsr_split split, int64_t index,
                                  int32_t *in_prefix)
{
    (void)split;
    (void)index;
    int d = ds->digits, t = ds->seq_length;
    int problem_len = 3 * d + 4, per_sample = (t + 1) / problem_len;
    for (int i = 0; i < t; i++) {
        int p = i / problem_len;
        in_prefix[i] = p < per_sample && i % problem_len < 2 * d + 2;
    }
    return TSR_OK;
}

static tsr_status random_sample(const tsr_dataset *ds, tsr_split split, int64_t index,
                                int32_t *tokens, float *mask)
{
    uint64_t key = tsr_rng_key_mix(tsr_rng_key(ds->seed, split_names[split]), 0x7a);
    for (int i = 0; i <= ds->seq_length; i += 4) {
        uint32_t r[4];
        tsr_rng_philox(key, (uint64_t)index, (uint64_t)i, r);
        for (int k = 0; k < 4 && i + k <= ds->seq_length; k++)
            tokens[i + k] = (int32_t)(r[k] % (uint32_t)ds->vocab_size);
    }
    for (int i = 0; i < ds->seq_length; i++)
        mask[i] = 1.0f;
    return TSR_OK;
}

static void synthetic_destroy(tsr_dataset *ds)
{
    free(ds);
}

static const tsr_dataset_ops addition_ops = {addition_sample, synthetic_destroy,
                                             addition_prefix};
static const tsr_dataset_ops random_ops = {random_sample, synthetic_destroy, NULL};

tsr_status tsr_dataset_open_synthetic(const tsr_config *cfg, tsr_dataset **out)
{
    const char *path = cfg->data_path;
    *out = NULL;
    tsr_dataset ds = {0};
    ds.seq_length = cfg->seq_length;
    ds.seed = (uint64_t)cfg->seed;
    size_t task_len = strncmp(path, "synthetic:addition", 18) == 0      ? 18
                      : strncmp(path, "synthetic:subtraction", 21) == 0 ? 21
                                                                         : 0;
    if (task_len > 0 && (path[task_len] == '\0' || path[task_len] == ':')) {
        ds.ops = &addition_ops;
        ds.subtract = task_len == 21;
        ds.name = ds.subtract ? "synthetic:subtraction" : "synthetic:addition";
        ds.vocab_size = ds.subtract ? SUBTRACTION_VOCAB : ADDITION_VOCAB;
        ds.has_answers = true;
        ds.digits = 3;
        ds.eod = TOK_NEWLINE; /* every problem is a document */
        if (path[task_len] == ':') {
            char *end = NULL;
            long digits = strtol(path + task_len + 1, &end, 10);
            if (end == path + task_len + 1 || *end != '\0' || digits < 1 || digits > 18)
                return tsr_error_set(TSR_ERR_INVALID_ARG,
                                     "--data-path %s: the digit count after '%s:' must be a "
                                     "whole number from 1 to 18",
                                     path, ds.name);
            ds.digits = (int)digits;
        }
        int problem_len = 3 * ds.digits + 4;
        if (cfg->seq_length + 1 < problem_len)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--seq-length %d is too short for %d-digit %s, which "
                                 "need %d tokens each; use --seq-length %d or more",
                                 cfg->seq_length, ds.digits,
                                 ds.subtract ? "subtractions" : "additions", problem_len,
                                 problem_len - 1);
    } else if (strcmp(path, "synthetic:random") == 0) {
        ds.ops = &random_ops;
        ds.name = "synthetic:random";
        ds.eod = cfg->eod_token;
        ds.vocab_size = cfg->vocab_size > 0 ? cfg->vocab_size : 256;
    } else if (strncmp(path, "synthetic:", 10) == 0) {
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--data-path %s: unknown synthetic dataset; use "
                             "synthetic:addition[:DIGITS], synthetic:subtraction[:DIGITS] or "
                             "synthetic:random",
                             path);
    } else {
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--data-path %s: file datasets (.bin/.idx, HDF5) are not "
                             "supported by this build yet; use synthetic:addition or "
                             "synthetic:random",
                             path);
    }
    if (cfg->vocab_size > 0 && cfg->vocab_size < ds.vocab_size)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--vocab-size %d is smaller than the %d tokens of %s",
                             cfg->vocab_size, ds.vocab_size, ds.name);
    tsr_dataset *heap = malloc(sizeof *heap);
    if (heap == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the dataset");
    *heap = ds;
    *out = heap;
    return TSR_OK;
}

void tsr_dataset_close(tsr_dataset *ds)
{
    if (ds != NULL)
        ds->ops->destroy(ds);
}

tsr_status tsr_dataset_batch(const tsr_dataset *ds, tsr_split split, int64_t first_index,
                             int batch, int32_t *tokens, int32_t *targets, float *mask)
{
    size_t t = (size_t)ds->seq_length;
    for (int b = 0; b < batch; b++) {
        /* the sample's t+1 tokens land in row b and the first slot of row
         * b+1 (or the extra slot), which the next sample overwrites */
        int32_t *row = tokens + (size_t)b * t;
        tsr_status st = ds->ops->sample(ds, split, first_index + b, row, mask + (size_t)b * t);
        if (st != TSR_OK)
            return st;
        memcpy(targets + (size_t)b * t, row + 1, t * sizeof *row);
    }
    return TSR_OK;
}
