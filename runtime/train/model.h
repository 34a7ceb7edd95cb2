/*
 * model.h - what the training loop needs from a model, and nothing more.
 *
 * A model owns its parameters and gradients (flat fp32 arrays carved from
 * the memory plan) and runs one micro batch at a time. The trainer owns the
 * optimizer state, the schedule, the loop and the metrics. Models live in
 * models/; this interface keeps runtime/ below them.
 */
#ifndef TSR_RUNTIME_TRAIN_MODEL_H
#define TSR_RUNTIME_TRAIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A contiguous run of parameters sharing weight-decay treatment and the
 * way the model reads them. */
typedef struct tsr_param_span {
    size_t offset; /* in floats, from the start of params/grads */
    size_t count;
    bool decay;    /* weights decay; biases and norm parameters do not */
    /* read only through their 16-bit copies under 16 bits
     * (TSR_PARAM_NO_FP32_READ): a model with fp32_view then holds no fp32
     * values of them */
    bool no_fp32_read;
} tsr_param_span;

/* A named parameter: its global shape and the block of it this rank holds
 * (everything on one rank; a shard under tensor parallelism). Checkpoints
 * are written and read through these, at global shape. */
typedef struct tsr_tensor_desc {
    const char *name;
    int64_t rows, cols;           /* global shape; cols = 1 for vectors */
    int64_t row_start, row_count; /* this rank's block */
    int64_t col_start, col_count;
    size_t offset;                /* floats from the start of params/grads/optimizer state
                                   * (frozen: of the model's frozen array) */
    bool writer;                  /* this rank writes its block (one replica per block) */
    bool frozen;                  /* never trained: no gradient, no optimizer state */
    bool adapter;                 /* a low-rank adapter (LoRA) of another tensor */
    int64_t experts;              /* > 1: rows are that many experts' blocks, stored as
                                   * (experts, rows / experts, cols) */
} tsr_tensor_desc;

/* One micro batch: B samples of T tokens, their targets and loss mask. */
typedef struct tsr_microbatch {
    const int32_t *tokens;  /* (B, T) */
    const int32_t *targets; /* (B, T) */
    const float *mask;      /* (B, T), 1 where the target counts */
    int64_t first_sample;   /* global index of sample 0 (keys dropout masks) */
    int64_t iteration;      /* keys dropout masks */
    /* When set, backward calls it whenever the gradients at flat index >=
     * from are final for the iteration (from decreasing call to call), so
     * that their data-parallel buckets can start reducing while backward
     * goes on. Final includes any reduction finish_grads would apply: a
     * model must not report gradients that finish_grads still changes. */
    void (*grads_ready)(void *ctx, size_t from);
    void *grads_ready_ctx;
    /* attention across documents and prefixes (tsr_attn_mask); (B, T) or NULL */
    const int32_t *doc_start, *prefix_lo, *prefix_hi;
} tsr_microbatch;

/* Where an iteration's micro batches come from: micro batch m holds
 * samples first_sample + m*micro_batch_size ... of the training split. */
struct tsr_dataset;
typedef struct tsr_microbatch_source {
    const struct tsr_dataset *dataset;
    int64_t first_sample;
    int micro_batch_size;
    int64_t iteration;
} tsr_microbatch_source;

/* Sums over the masked tokens of a micro batch (evaluation). */
typedef struct tsr_eval_counts {
    double loss_sum;
    double tokens;
    double correct; /* argmax == target */
} tsr_eval_counts;

typedef struct tsr_model {
    void *self;
    float *params;
    float *grads;
    /* Under --bf16 / --fp16: params is only the fp32 view the model's own
     * kernels read, of the 16-bit values (the trainer writes it for the
     * spans not no_fp32_read; the others have no memory behind them),
     * and the carved initial values are in grads. false: params holds
     * them, and the trainer rewrites all of it with the 16-bit values. */
    bool fp32_view;
    size_t param_count;
    /* floats at the start of params/grads holding this rank's experts
     * under expert parallelism: summed over the expert-data-parallel group
     * instead of the data-parallel one (0: none) */
    size_t expert_count;
    const tsr_param_span *spans;
    size_t span_count;
    const tsr_tensor_desc *tensors;
    size_t tensor_count;
    /* parameters that are never updated (TSR_PARAM_FROZEN): held apart
     * from params, so gradients, reductions and optimizer state cover the
     * trainable ones only; checkpoints write and read them with the rest */
    float *frozen;
    size_t frozen_count;
    /* elements of the largest activation a module passes to a linear
     * kernel (sizes --bf16's operand workspace; 0: rows x hidden x 4) */
    size_t largest_operand;
    /* forward + backward of one micro batch; gradients accumulate. The
     * loss is the mean over masked tokens, scaled by loss_scale for the
     * gradient (1 / number of micro batches). *loss gets the unscaled mean. */
    tsr_status (*train_microbatch)(void *self, const tsr_microbatch *mb, float loss_scale,
                                   double *loss);
    tsr_status (*eval_microbatch)(void *self, const tsr_microbatch *mb, tsr_eval_counts *out);
    /* the modules' own loss terms (MoE load balancing, z-loss) of this
     * rank's training micro batches since the last call, counted once per
     * tensor-parallel group; NULL: the model has none */
    double (*take_aux_loss)(void *self);
    /* completes the iteration's gradients after the last micro batch and
     * before data-parallel reduction (NULL: nothing to do); e.g. sums the
     * sequence-parallel partial gradients of replicated parameters */
    tsr_status (*finish_grads)(void *self);
    /* forward + backward of all `count` micro batches of an iteration, in
     * whatever order the model's pipeline schedule needs, reading them from
     * src; *loss_sum gets the sum of their mean losses (NULL: the trainer
     * loops train_microbatch) */
    tsr_status (*train_iteration)(void *self, const tsr_microbatch_source *src, int count,
                                  float loss_scale, double *loss_sum);
} tsr_model;

#ifdef __cplusplus
}
#endif

#endif /* TSR_RUNTIME_TRAIN_MODEL_H */
