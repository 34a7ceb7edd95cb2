/*
 * trainer.h - the training loop: micro batches, gradient accumulation,
 * global gradient norm and clipping, AdamW, LR schedule, NaN skipping,
 * evaluation and the log line.
 *
 * The trainer knows nothing of the parallel layout: the layer above hands
 * it hooks that reduce gradients, gather parameters and sum scalars across
 * ranks, and the part of the flat parameter buffer this rank owns
 * (optimizer.h). NULL hooks: one rank.
 *
 * One iteration, as the hooks see it:
 *   finish_param_sync        before the first forward (an all-gather of the
 *                            previous step may still be in flight)
 *   micro batches            forward + backward; in the last one, under
 *                            --overlap-grad-reduce, the model calls
 *                            grads_ready(from) as backward completes layers
 *   model.finish_grads, finish_grad_sync
 *                            the owned ranges now hold the DP average
 *   norm                     owned sum of squares, sum_world
 *   AdamW on the owned part, start_param_sync
 */
#ifndef TSR_RUNTIME_TRAINER_H
#define TSR_RUNTIME_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "data/dataset.h"
#include "model.h"
#include "optimizer.h"
#include "precision.h"
#include "tessera/config.h"

struct tsr_trainer;

typedef struct tsr_trainer_hooks {
    void *ctx; /* of every hook but save */
    int dp_rank, dp_size;
    int expert_dp_size; /* of the model's expert region (0 or 1: none) */
    /* what this rank owns of the flat buffer (ranges NULL: all of it) */
    tsr_param_shard shard;
    /* Model callback (tsr_microbatch.grads_ready) for the backward of the
     * last micro batch: gradients at flat index >= from are final, so
     * their buckets may start reducing. Errors surface at finish_grad_sync. */
    void (*grads_ready)(void *ctx, size_t from);
    /* After backward: starts the buckets not yet started and waits for
     * all. Afterwards the owned ranges hold the data-parallel average (the
     * whole buffer unless shard.sharded_state). */
    tsr_status (*finish_grad_sync)(void *ctx);
    /* Distributed optimizer: after the step, all-gathers the updated
     * slices (returning with it done unless --overlap-param-gather);
     * finish_param_sync completes an all-gather still in flight. */
    tsr_status (*start_param_sync)(void *ctx);
    tsr_status (*finish_param_sync)(void *ctx);
    /* sum scalars over data-parallel ranks (in place) */
    tsr_status (*sum_scalars)(void *ctx, double *values, int count);
    /* sum scalars over every rank of the job (in place; NULL: one rank) */
    tsr_status (*sum_world)(void *ctx, double *values, int count);
    /* writes a checkpoint of the trainer's state (NULL: no --save) */
    void *save_ctx;
    tsr_status (*save)(void *save_ctx, const struct tsr_trainer *tr);
} tsr_trainer_hooks;

typedef struct tsr_trainer {  /* fields are read by checkpointing */
    const tsr_config *cfg;
    const tsr_dataset *dataset;
    tsr_model model;
    tsr_trainer_hooks hooks;
    double flops_per_sample;
    tsr_precision precision; /* --bf16's weight copies and products */
    float *adam_m, *adam_v; /* state_count floats each (optimizer.h) */
    /* under --bf16 / --fp16 the fp32 master weights, indexed as the
     * moments (sharded with them by the distributed optimizer); NULL in
     * fp32, where the model's params are the master */
    float *master;
    size_t state_count;
    size_t padded_count; /* grads/params length the reductions work on (>= param_count) */
    int32_t *tokens, *targets;
    float *mask;
    int32_t *doc_start, *prefix_lo, *prefix_hi; /* NULL unless the attention flags need them */
    int64_t iteration, consumed_samples, adam_step;
    int64_t nan_iterations_total;
    /* fp16 iterations skipped because their gradients overflowed: they
     * did not update the weights, so the LR schedule has not stepped for
     * them (its step is iteration - this) */
    int64_t overflow_iterations_total;
    double last_loss;  /* loss of the last iteration */
    /* the iterations of this run after its first (which warms caches and
     * pages) and their seconds: the measured iteration time */
    int64_t timed_iterations;
    double timed_seconds;
} tsr_trainer;

/* Adds the optimizer state and batch buffers of one rank to the plan:
 * the Adam moments, and under --bf16 / --fp16 the fp32 master weights.
 * With --use-distributed-optimizer over dp_size > 1 ranks they are
 * planned for this rank's shard only,
 * tsr_shard_padded_count(param_count, dp_size) / dp_size floats each, and
 * the gradients (in fp32 the parameters too, which are then all-gathered;
 * in 16 bits the weight copies are) grow to the padded count (taken right
 * after the model's buffers and their 64-byte alignment slack, so the
 * reductions see one padded buffer; the model must carve them last from
 * their arenas). */
void tsr_trainer_plan_sharded(const tsr_config *cfg, size_t param_count, int dp_size,
                              tsr_memory_plan *plan);
/* The same for a model with an expert region of expert_count floats
 * (tsr_model.expert_count) sharded over edp_size ranks. */
void tsr_trainer_plan_sharded_experts(const tsr_config *cfg, size_t param_count,
                                      size_t expert_count, int dp_size, int edp_size,
                                      tsr_memory_plan *plan);
/* The same for one data-parallel rank. */
void tsr_trainer_plan(const tsr_config *cfg, size_t param_count, tsr_memory_plan *plan);

/* Carves what tsr_trainer_plan_sharded planned, for hooks->dp_size ranks;
 * the hooks' shard must agree with the plan (TSR_ERR_INTERNAL if not). */
tsr_status tsr_trainer_init(tsr_trainer *tr, const tsr_config *cfg, const tsr_dataset *dataset,
                            tsr_model model, const tsr_trainer_hooks *hooks,
                            double flops_per_sample, tsr_memory_plan *plan);

/* Adds --bf16's weight copies and operand workspace for this model
 * (nothing in fp32): with the sharded plan, before allocating. */
void tsr_trainer_plan_precision(const tsr_config *cfg, const tsr_model *model, int dp_size,
                                tsr_memory_plan *plan);
/* Under --bf16 / --fp16: the trainable weights are now image
 * (param_count floats at flat offsets: the initialisation or a loaded
 * checkpoint): takes this rank's master from it and rounds all of it into
 * the copies. The trainer does it for the initial values itself. */
void tsr_trainer_adopt_weights(tsr_trainer *tr, const float *image);
/* The buffer a checkpoint's trainable weights pass through: the model's
 * params in fp32; under 16 bits its gradients (free between iterations),
 * which tsr_trainer_master_image fills with the master at this rank's
 * ranges. */
float *tsr_trainer_weight_image(const tsr_trainer *tr);
void tsr_trainer_master_image(const tsr_trainer *tr);
/* After AdamW updated the master: rounds the ranges this rank updated into
 * the 16-bit weights (the step calls it). */
void tsr_trainer_store_master(tsr_trainer *tr);
/* Frees what tsr_trainer_init made outside the plan (the bf16 context). */
void tsr_trainer_release(tsr_trainer *tr);

/* Trains until --train-iters; logs every --log-interval; evaluates every
 * --eval-interval and at the last iteration (--eval-interval 0: never);
 * saves every --save-interval and at the last iteration (with
 * --train-iters 0: once, the initial state at iteration 0). Stops earlier,
 * saving, at --exit-interval, after --exit-duration-in-mins or on a signal
 * under --exit-signal-handler (TSR_OK; the log says why). The
 * metrics file may be NULL. */
tsr_status tsr_trainer_run(tsr_trainer *tr, FILE *metrics);

/* --save-failure: with "continue", a save that failed for I/O or memory
 * (st) is a warning naming what happens `then` ("training continues"), and
 * TSR_OK is returned, since saving is atomic and the previous checkpoint
 * stands; any other status is returned as it is. */
tsr_status tsr_save_failure_apply(const tsr_config *cfg, tsr_status st, const char *then);

/* Runs --eval-iters validation batches and reports them. */
tsr_status tsr_trainer_evaluate(tsr_trainer *tr, FILE *metrics);

#endif /* TSR_RUNTIME_TRAINER_H */
