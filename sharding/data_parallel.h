/*
 * data_parallel.h - data parallelism: gradient reduction across the
 * data-parallel group in buckets, overlapped with backward, and (with
 * --use-distributed-optimizer) the distributed optimizer's reduce-scatter
 * and parameter all-gather; all as the trainer's hooks (trainer.h).
 *
 * Each rank's gradients arrive already scaled by 1 / (micro batches x
 * data-parallel size), so a sum across the group is the average. Buckets
 * (grad_buckets.h) are reduced in the order backward completes them:
 * under --overlap-grad-reduce each starts, non-blocking, as soon as the
 * model reports its gradients final during the last micro batch's
 * backward; the rest start after backward; all are waited for before the
 * optimizer. Without the distributed optimizer a bucket is all-reduced;
 * with it, reduce-scattered (dist_optimizer.c).
 *
 * Who owns what: every rank owns one slice of each bucket. It counts the
 * owned gradients in the global norm and writes the owned elements to
 * checkpoints; with the distributed optimizer it also keeps Adam moments
 * for, and updates, only those elements.
 *
 * Lifecycle (launcher/cmd_train.c): tsr_dp_create() after the model is
 * created and before tsr_trainer_init(); tsr_dp_destroy() after training.
 */
#ifndef TSR_SHARDING_DATA_PARALLEL_H
#define TSR_SHARDING_DATA_PARALLEL_H

#include "sharding/grad_buckets.h"
#include "sharding/grid.h"
#include "train/trainer.h"

typedef struct tsr_dp tsr_dp;

/* Sets up the buckets and this rank's shard for `model` (its params and
 * grads must be followed by the padding tsr_trainer_plan_sharded() plans).
 * Reads cfg->use_distributed_optimizer, overlap_param_gather and
 * ddp_bucket_size. Not collective. */
tsr_status tsr_dp_create(const tsr_config *cfg, tsr_grid *grid, const tsr_model *model,
                         tsr_dp **out);
/* Completes whatever is still in flight; NULL is a no-op. */
void tsr_dp_destroy(tsr_dp *dp);

/* Fills every trainer hook but save (ctx = dp). With one data-parallel
 * rank only sum_world is set (and only if the world has several ranks). */
void tsr_dp_fill_hooks(tsr_dp *dp, tsr_trainer_hooks *hooks);

const tsr_bucket_layout *tsr_dp_layout(const tsr_dp *dp);

/* Under --bf16 / --fp16 (after tsr_trainer_init): the distributed
 * optimizer all-gathers the trainer's 16-bit weights (element_bytes
 * each, laid out as the flat buffer: tsr_precision.weight_copies) after
 * each step, the model's fp32 params being only a view of them. */
void tsr_dp_gather_weights(tsr_dp *dp, void *weights, size_t element_bytes);

#endif /* TSR_SHARDING_DATA_PARALLEL_H */
