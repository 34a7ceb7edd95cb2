/*
 * trainer.h - the training loop: micro batches, gradient accumulation,
 * global gradient norm and clipping, AdamW, LR schedule, NaN skipping,
 * evaluation and the log line.
 *
 * The trainer knows nothing of the parallel layout: the layer above hands
 * it hooks that reduce gradients and scalars across data-parallel ranks
 * (NULL hooks: one rank).
 */
#ifndef TSR_RUNTIME_TRAINER_H
#define TSR_RUNTIME_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "data/dataset.h"
#include "model.h"
#include "tessera/config.h"

struct tsr_trainer;

typedef struct tsr_trainer_hooks {
    void *ctx;
    /* average gradients over data-parallel ranks (in place) */
    tsr_status (*average_grads)(void *ctx, float *grads, size_t count);
    /* sum scalars over data-parallel ranks (in place) */
    tsr_status (*sum_scalars)(void *ctx, double *values, int count);
    /* sum scalars over every rank of the job (in place; NULL: one rank) */
    tsr_status (*sum_world)(void *ctx, double *values, int count);
    int dp_rank, dp_size;
    /* writes a checkpoint of the trainer's state (NULL: no --save) */
    tsr_status (*save)(void *ctx, const struct tsr_trainer *tr);
} tsr_trainer_hooks;

typedef struct tsr_trainer {  /* fields are read by checkpointing */
    const tsr_config *cfg;
    const tsr_dataset *dataset;
    tsr_model model;
    tsr_trainer_hooks hooks;
    double flops_per_sample;
    float *adam_m, *adam_v;
    int32_t *tokens, *targets;
    float *mask;
    int64_t iteration, consumed_samples, adam_step;
    int64_t nan_iterations_total;
    double last_loss;  /* loss of the last iteration */
} tsr_trainer;

/* Adds the optimizer state and batch buffers to the plan. */
void tsr_trainer_plan(const tsr_config *cfg, size_t param_count, tsr_memory_plan *plan);

tsr_status tsr_trainer_init(tsr_trainer *tr, const tsr_config *cfg, const tsr_dataset *dataset,
                            tsr_model model, const tsr_trainer_hooks *hooks,
                            double flops_per_sample, tsr_memory_plan *plan);

/* Trains until --train-iters; logs every --log-interval, evaluates every
 * --eval-interval; the metrics file may be NULL. */
tsr_status tsr_trainer_run(tsr_trainer *tr, FILE *metrics);

/* Runs --eval-iters validation batches and reports them. */
tsr_status tsr_trainer_evaluate(tsr_trainer *tr, FILE *metrics);

#endif /* TSR_RUNTIME_TRAINER_H */
