/*
 * attention_rows.c - the per-query rows of the attention mask that the
 * data defines: where each query's document starts (--reset-attention-
 * mask, Megatron's semantics: a document ends after its end-of-document
 * token, which belongs to it) and which bidirectional prefix it is in
 * (--prefix-lm). Computed with the micro batch, by every pipeline stage
 * from the same samples, so every layout sees the same mask.
 */
#include <string.h>

#include "dataset.h"

tsr_status tsr_dataset_check_attention(const tsr_dataset *ds, const tsr_config *cfg)
{
    if (cfg->reset_attention_mask && ds->eod < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--reset-attention-mask needs the end-of-document token of %s; "
                             "give it with --eod-token ID (the tokenizer's, e.g. 50256 for "
                             "GPT-2's <|endoftext|>)",
                             ds->name);
    if (cfg->eod_token >= ds->vocab_size && ds->vocab_size > 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--eod-token %d is outside the vocabulary of %s (%d tokens)",
                             cfg->eod_token, ds->name, ds->vocab_size);
    if (cfg->prefix_lm && ds->ops->prefix == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--prefix-lm needs data that defines a prefix (a prompt) in each "
                             "sample, and %s defines none; use synthetic:addition (its "
                             "questions are prefixes) or drop --prefix-lm",
                             ds->name);
    return TSR_OK;
}

static void documents(int32_t *doc_start, const int32_t *tokens, int64_t t, int32_t eod)
{
    int32_t start = 0;
    for (int64_t i = 0; i < t; i++) {
        doc_start[i] = start;
        if (tokens[i] == eod)
            start = (int32_t)(i + 1);
    }
}

/* in_prefix arrives in hi (0/1 per position); runs are cut at documents */
static void prefixes(int32_t *lo, int32_t *hi, float *mask, const int32_t *doc_start, int64_t t)
{
    int64_t i = 0;
    while (i < t) {
        if (hi[i] == 0) {
            lo[i] = 0;
            i++;
            continue;
        }
        int64_t end = i + 1;
        while (end < t && hi[end] != 0 && (doc_start == NULL || doc_start[end] == doc_start[i]))
            end++;
        for (int64_t j = i; j < end; j++) {
            lo[j] = (int32_t)i;
            hi[j] = (int32_t)end;
            if (j + 1 < end) /* query j sees its target j + 1 */
                mask[j] = 0.0f;
        }
        i = end;
    }
}

tsr_status tsr_dataset_attention_rows(const tsr_dataset *ds, tsr_split split,
                                      int64_t first_index, int batch, const int32_t *tokens,
                                      float *mask, int32_t *doc_start, int32_t *prefix_lo,
                                      int32_t *prefix_hi)
{
    int64_t t = ds->seq_length;
    for (int b = 0; b < batch; b++) {
        size_t off = (size_t)b * (size_t)t;
        if (doc_start != NULL)
            documents(doc_start + off, tokens + off, t, ds->eod);
        if (prefix_lo == NULL || prefix_hi == NULL)
            continue;
        if (ds->ops->prefix == NULL)
            return tsr_error_set(TSR_ERR_INVALID_ARG, "%s defines no prefix", ds->name);
        tsr_status st = ds->ops->prefix(ds, split, first_index + b, prefix_hi + off);
        if (st != TSR_OK)
            return st;
        prefixes(prefix_lo + off, prefix_hi + off, mask + off,
                 doc_start != NULL ? doc_start + off : NULL, t);
    }
    return TSR_OK;
}
