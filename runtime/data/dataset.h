/*
 * dataset.h - where training samples come from.
 *
 * A dataset is a pure function from (split, global sample index) to one
 * sample of seq_length+1 tokens and a loss mask over its seq_length
 * targets. Every layout therefore sees the same sample i; a data-parallel
 * rank takes the indices of its share of each global batch.
 */
#ifndef TSR_RUNTIME_DATASET_H
#define TSR_RUNTIME_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "tessera/config.h"
#include "tessera/status.h"

typedef enum tsr_split { TSR_SPLIT_TRAIN = 0, TSR_SPLIT_VALID, TSR_SPLIT_TEST } tsr_split;

typedef struct tsr_dataset tsr_dataset;

typedef struct tsr_dataset_ops {
    /* tokens: seq_length+1 ids; mask: seq_length weights (1 where the
     * target tokens[t+1] counts in the loss, 0 elsewhere) */
    tsr_status (*sample)(const tsr_dataset *ds, tsr_split split, int64_t index,
                         int32_t *tokens, float *mask);
    void (*destroy)(tsr_dataset *ds);
    /* Optional (NULL: the data defines no prefix): in_prefix[t] = 1 where
     * input token t belongs to a prefix (a prompt: attended both ways
     * under --prefix-lm), else 0, for the seq_length inputs of the sample. */
    tsr_status (*prefix)(const tsr_dataset *ds, tsr_split split, int64_t index,
                         int32_t *in_prefix);
} tsr_dataset_ops;

struct tsr_dataset {
    const tsr_dataset_ops *ops;
    const char *name;
    int vocab_size;   /* ids are in [0, vocab_size) */
    int seq_length;
    bool has_answers; /* evaluation reports answer accuracy (synthetic tasks) */
    uint64_t seed;
    int digits;       /* synthetic:addition and :subtraction */
    int32_t eod;      /* the token that ends a document; -1: none known */
    bool reads_hdf5;  /* samples are read through libhdf5 while training */
    bool subtract;    /* synthetic:subtraction */
};

/* Opens the dataset named by cfg->data_path ("synthetic:addition[:DIGITS]",
 * "synthetic:random"). The vocabulary of synthetic:random is
 * cfg->vocab_size (default 256). */
tsr_status tsr_dataset_open(const tsr_config *cfg, tsr_dataset **out);
void tsr_dataset_close(tsr_dataset *ds);

/* Fills a micro batch: samples first_index .. first_index+batch-1.
 * tokens holds batch*seq_length+1 ids (one spare), targets and mask
 * batch*seq_length. */
tsr_status tsr_dataset_batch(const tsr_dataset *ds, tsr_split split, int64_t first_index,
                             int batch, int32_t *tokens, int32_t *targets, float *mask);

/* The attention rows of a micro batch filled by tsr_dataset_batch (see
 * tsr_attn_mask): each of batch*seq_length int32 or NULL for none.
 * doc_start: documents end after each ds->eod token. prefix_lo/hi: the
 * maximal runs of prefix tokens (ds->ops->prefix) within a document;
 * a query in a run sees the whole run, and the targets its run holds are
 * taken out of the loss (mask = 0), since the query sees them. */
tsr_status tsr_dataset_attention_rows(const tsr_dataset *ds, tsr_split split,
                                      int64_t first_index, int batch, const int32_t *tokens,
                                      float *mask, int32_t *doc_start, int32_t *prefix_lo,
                                      int32_t *prefix_hi);

/* Checks that the dataset defines what the attention flags need
 * (--reset-attention-mask: an end-of-document token; --prefix-lm: a
 * prefix); a configuration error otherwise. */
tsr_status tsr_dataset_check_attention(const tsr_dataset *ds, const tsr_config *cfg);

/* Token text for display: the addition task's characters. */
char tsr_addition_token_char(int32_t token);
/* The inverse, for prompts: the token of '0'-'9', '+', '-', '=' and the
 * newline ('|' or '\n'); -1 for any other character. */
int32_t tsr_arithmetic_token(char c);

#endif /* TSR_RUNTIME_DATASET_H */
