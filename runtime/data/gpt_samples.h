/*
 * gpt_samples.h - documents packed into GPT training samples, and the
 * token-source interface the packer reads from.
 *
 * A token source is a read-only list of documents (Megatron's "sequences")
 * of integer tokens: the .bin/.idx reader (indexed.h) and the HDF5 token
 * reader (hdf5_tokens.h) implement it. Sources validate their files and
 * every token against the vocabulary when they open, so read() only fails
 * on I/O errors or files changed under a running job.
 *
 * The packer serves one split (a contiguous document range, chosen as
 * Megatron's --split does) as an endless stream of samples of
 * seq_length+1 tokens. Epoch e is the split's documents in an order
 * shuffled from (key, e), concatenated, cut into samples_per_epoch =
 * (tokens-1)/seq_length windows that overlap by one token; the windows
 * are served in an order shuffled from (key, e) too. Sample i is a pure
 * function of (source, range, seq_length, key, i): every rank and every
 * layout sees the same sample i, in whatever order samples are asked for.
 *
 * Shuffles are keyed bijections (a Feistel network with cycle walking), so
 * an epoch costs one int64 per document (the prefix sums of its shuffled
 * lengths), rebuilt when a sample of another epoch is asked for. Called by
 * blend.c; tests/data/test_gpt_samples.c checks the invariants above.
 */
#ifndef TSR_RUNTIME_GPT_SAMPLES_H
#define TSR_RUNTIME_GPT_SAMPLES_H

#include <stdint.h>

#include "tessera/status.h"

typedef struct tsr_token_source tsr_token_source;

typedef struct tsr_token_source_ops {
    /* tokens in document `doc` (0 <= doc < documents) */
    int64_t (*length)(const tsr_token_source *src, int64_t doc);
    /* out[0..count) = tokens offset..offset+count of `doc`, all within it */
    tsr_status (*read)(const tsr_token_source *src, int64_t doc, int64_t offset, int64_t count,
                       int32_t *out);
    void (*destroy)(tsr_token_source *src);
    /* out[0..count) = the loss weight of those tokens as targets (1: the
     * token is predicted in the loss, 0: not); NULL: every token counts */
    tsr_status (*read_loss_mask)(const tsr_token_source *src, int64_t doc, int64_t offset,
                                 int64_t count, float *out);
} tsr_token_source_ops;

struct tsr_token_source {
    const tsr_token_source_ops *ops;
    const char *name; /* the file named in messages */
    int64_t documents;
};

void tsr_token_source_destroy(tsr_token_source *src);

/* Parses --split "969,30,1" (or "969/30/1", or one number): up to three
 * non-negative proportions, missing ones 0, normalised to sum 1. */
tsr_status tsr_split_parse(const char *text, double fractions[3]);

/* Megatron's document ranges for `documents` documents: split s holds
 * documents bounds[s] .. bounds[s+1]-1. Each bound adds
 * round-half-to-even(fraction x documents) to the previous one and every
 * bound after the first is then shifted so that bounds[3] == documents,
 * exactly as Megatron's get_train_valid_test_split_ does; a bound that
 * would then fall below the previous one (Megatron yields a negative
 * range there) is raised to it. */
void tsr_split_bounds(const double fractions[3], int64_t documents, int64_t bounds[4]);

typedef struct tsr_gpt_samples tsr_gpt_samples;

/* Packs documents [first_doc, end_doc) of `src` (borrowed; it must outlive
 * the packer). Fails with TSR_ERR_INVALID_ARG when the range holds fewer
 * than seq_length+1 tokens, naming `what` (e.g. "split 'valid'"). */
tsr_status tsr_gpt_samples_create(const tsr_token_source *src, int64_t first_doc,
                                  int64_t end_doc, int seq_length, uint64_t key,
                                  const char *what, tsr_gpt_samples **out);
void tsr_gpt_samples_destroy(tsr_gpt_samples *s);

int64_t tsr_gpt_samples_per_epoch(const tsr_gpt_samples *s);
int64_t tsr_gpt_samples_tokens(const tsr_gpt_samples *s); /* per epoch */

/* tokens[0..seq_length] of sample `index` (>= 0). Not thread-safe: it may
 * rebuild the packer's epoch table. */
tsr_status tsr_gpt_samples_get(tsr_gpt_samples *s, int64_t index, int32_t *tokens);
/* The same with weights[0..seq_length] the source's loss mask of those
 * tokens (weights NULL, or a source without one: as tsr_gpt_samples_get). */
tsr_status tsr_gpt_samples_get_weighted(tsr_gpt_samples *s, int64_t index, int32_t *tokens,
                                        float *weights);

/* A keyed pseudo-random bijection of [0, n): the shuffle of documents and
 * samples. Exposed for tests. */
uint64_t tsr_shuffle_index(uint64_t key, uint64_t n, uint64_t x);

#endif /* TSR_RUNTIME_GPT_SAMPLES_H */
