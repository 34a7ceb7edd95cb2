/*
 * lm_head_steps.h - the output layer fused with the cross-entropy, as
 * steps over chunks of rows: the one order of work that the CPU head
 * (sharding/modules/lm_head.c) and the GPU head (kernels/cuda/
 * lm_head_cuda.h) both execute, each with its own kernels as the steps.
 *
 * For each chunk of rows of x (n, hidden) against this rank's vocabulary
 * rows of the weight (v_local, hidden):
 *   1. logits = x_chunk @ weight^T, the padded columns (from first_pad)
 *      -inf, so that padding changes neither the loss nor the gradient;
 *   2. each row's max, reduced (max) over the vocabulary shards;
 *   3. sum-exp and target logit, side by side, reduced (sum) at once;
 *   4. the row's loss, log(sumexp) + row_max - target_logit, and 1 where
 *      the target's logit is the row's maximum (its argmax);
 *   5. in training, the logits become their gradient in place,
 *      (softmax - onehot) * row_weight, folded straight into
 *      dx += dlogits @ weight and dweight += dlogits^T @ x_chunk.
 * Neither the whole logits nor the probabilities ever exist, and nothing
 * is gathered: one chunk's scratch is all the memory the head needs
 * beyond its inputs and outputs. dx is this rank's partial input
 * gradient; the caller sums it over the shards.
 *
 * The chunk size comes from a byte budget for one chunk's logits: the
 * CPU gives TSR_LM_HEAD_CHUNK_ROWS rows' worth (a core's caches), a GPU
 * much more (its products want many rows: a GPT-2 vocabulary of 50304
 * columns in 256 MiB is 1328 rows). Rows are independent, so the chunking
 * changes only the order in which the weight gradient is summed.
 *
 * The order is pure host code (pointers are only offset there); the CPU's
 * steps are here too (tsr_head_cpu_ops). Unit-tested with them, on one
 * shard and on two shards reducing between threads
 * (tests/kernels/test_lm_head_steps.c).
 */
#ifndef TSR_KERNELS_LM_HEAD_STEPS_H
#define TSR_KERNELS_LM_HEAD_STEPS_H

#include <stdbool.h>
#include <stdint.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every part of the scratch starts on this boundary, in bytes (the GPU
 * products' alignment; a cache line's quarter on the CPU). */
#define TSR_HEAD_ALIGN 16
/* A chunk's row count is a multiple of this (unless one chunk takes every
 * row), so that each chunk's rows of the input and of its gradient start
 * on a TSR_HEAD_ALIGN boundary whatever the hidden size. */
#define TSR_HEAD_ROW_MULTIPLE 8

/* The head of one rank: n rows of width hidden against v_local rows of
 * the vocabulary starting at vocab_start; rows at or past `vocab` (the
 * real vocabulary; the rest is padding) get -inf logits. */
typedef struct tsr_head_shape {
    int64_t n, hidden;
    int64_t v_local, vocab_start, vocab;
} tsr_head_shape;

typedef struct tsr_head_plan {
    tsr_head_shape shape;
    int64_t chunk_rows; /* rows of every chunk but the last */
    int64_t chunks;
    int64_t last_rows;  /* rows of the last chunk (chunk_rows when it is full) */
    int64_t first_pad;  /* local column of the first padded row; v_local: none */
    /* one chunk's scratch: logits (chunk_rows x v_local floats), then
     * row_max (chunk_rows) and the pack of sum-exp and target logit (2
     * chunk_rows) that one reduction carries; offsets in floats */
    int64_t row_max_offset, pack_offset;
    int64_t scratch_bytes;
} tsr_head_plan;

/* The plan for `shape` whose logits take at most logits_budget_bytes.
 * TSR_ERR_INVALID_ARG, saying which, for a size below 1, a negative
 * vocab_start, or a budget that holds fewer than TSR_HEAD_ROW_MULTIPLE
 * rows of logits (and not all n). */
tsr_status tsr_head_plan_make(tsr_head_plan *plan, const tsr_head_shape *shape,
                              int64_t logits_budget_bytes);

/* Rows of chunk `chunk` (0 <= chunk < plan->chunks) and its first row. */
int64_t tsr_head_chunk_rows(const tsr_head_plan *plan, int64_t chunk);
int64_t tsr_head_chunk_start(const tsr_head_plan *plan, int64_t chunk);

typedef enum tsr_head_reduce_op {
    TSR_HEAD_REDUCE_MAX = 0,
    TSR_HEAD_REDUCE_SUM
} tsr_head_reduce_op;

/* The head's inputs, outputs and scratch (device memory on the GPU). */
typedef struct tsr_head_io {
    const float *x;          /* (n, hidden) */
    const int32_t *targets;  /* (n), global vocabulary ids */
    const float *row_weight; /* (n): d loss / d row loss; read in training only */
    float *row_loss;         /* (n), written */
    float *row_correct;      /* (n), written */
    float *dx;               /* (n, hidden), added to in training */
    float *scratch;          /* plan->scratch_bytes */
} tsr_head_io;

/* The steps of one chunk of `rows` rows, as the CPU or a device performs
 * them (the weight and its gradient are the steps' own); pointers are
 * already offset to the chunk. Each returns TSR_OK or ends the head with
 * its status. */
typedef struct tsr_head_ops {
    /* logits (rows, v_local) = x @ weight^T, the padded columns -inf */
    tsr_status (*logits)(void *ctx, float *logits, const float *x, int64_t rows);
    tsr_status (*row_max)(void *ctx, float *row_max, const float *logits, int64_t rows);
    /* x (count) reduced in place over the vocabulary shards */
    tsr_status (*reduce)(void *ctx, float *x, int64_t count, tsr_head_reduce_op op);
    tsr_status (*sumexp_target)(void *ctx, float *sumexp, float *target_logit,
                                const float *logits, const float *row_max,
                                const int32_t *targets, int64_t rows);
    /* row_loss and row_correct */
    tsr_status (*loss)(void *ctx, float *loss, float *correct, const float *sumexp,
                       const float *row_max, const float *target_logit, int64_t rows);
    /* logits -> their gradient, in place */
    tsr_status (*to_grad)(void *ctx, float *logits, const float *row_max, const float *sumexp,
                          const int32_t *targets, const float *row_weight, int64_t rows);
    /* dx += dlogits @ weight; the weight's gradient += dlogits^T @ x */
    tsr_status (*backward)(void *ctx, float *dx, const float *dlogits, const float *x,
                           int64_t rows);
} tsr_head_ops;

/* The head over every chunk, steps 1-4 and in training 5. */
tsr_status tsr_head_run(const tsr_head_plan *plan, const tsr_head_io *io, bool train,
                        const tsr_head_ops *ops, void *ctx);

/* The steps with the CPU kernels (tessera/kernels.h), for a ctx that is
 * a tsr_head_cpu: the plan, the weight (fp32; under --bf16 / --fp16 the
 * linear kernels read its mapped 16-bit copy), its gradient (NULL:
 * frozen) and the reduction over the vocabulary shards (NULL: one shard). */
typedef struct tsr_head_cpu {
    const tsr_head_plan *plan;
    const float *weight;
    float *dweight;
    tsr_status (*reduce)(void *reduce_ctx, float *x, int64_t count, tsr_head_reduce_op op);
    void *reduce_ctx;
} tsr_head_cpu;

extern const tsr_head_ops tsr_head_cpu_ops;

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_LM_HEAD_STEPS_H */
