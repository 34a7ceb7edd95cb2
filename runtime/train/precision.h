/*
 * precision.h - what --bf16 and --fp16 add to training: 16-bit compute
 * copies of the model's weights beside the fp32 master the optimizer
 * updates, the operand workspace, the matrix-product context the linear
 * kernels use while it is active (kernels/matmul16.h), and fp16's loss
 * scaler.
 *
 * Megatron's rules, as far as this build keeps them: the optimizer, its
 * state (the fp32 master beside m and v, all sharded by the distributed
 * optimizer), the gradients and their reductions, norms, softmax,
 * attention statistics and losses are fp32; the model's weights are
 * 16-bit, whole on every rank: the master rounded once per update (each
 * rank rounds the ranges it updated; the distributed optimizer then
 * all-gathers the 16-bit weights). Modules that read a weight outside a
 * product read the model's fp32 view of its 16-bit value (model.h
 * fp32_view); a product's activation operand is rounded as it is read, and
 * its sum is fp32. Saved activations and the
 * residual stream between layers (unless --fp32-residual-connection)
 * are held in 16 bits (sharding/net_held.c), as Megatron holds them.
 * Checkpoints hold the fp32 master, so fp32, bf16 and fp16 runs load
 * each other's.
 *
 * fp16 scales the loss (its gradient) by S before backward so that small
 * gradients survive fp16's range, and divides the gradients by S in the
 * optimizer step. An iteration whose gradients hold inf or NaN overflowed:
 * it is skipped (counted in the log line's skipped iterations), and the
 * scale follows Megatron's dynamic scaler: after `hysteresis` overflows
 * it halves (not below --min-loss-scale), after --loss-scale-window clean
 * iterations in a row it doubles and the hysteresis is restored.
 * --loss-scale S holds it at S (overflowing iterations still skipped).
 */
#ifndef TSR_RUNTIME_TRAIN_PRECISION_H
#define TSR_RUNTIME_TRAIN_PRECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "kernels/matmul16.h"
#include "tessera/config.h"
#include "train/model.h"

typedef struct tsr_loss_scaler {
    bool dynamic;
    double scale, min_scale;
    int window, hysteresis;
    int64_t growth_tracker, hysteresis_tracker;
} tsr_loss_scaler;

typedef struct tsr_precision {
    tsr_matmul16 *matmul; /* NULL: fp32 training */
    /* the trainable weights' 16-bit values (padded_count elements: the
     * distributed optimizer all-gathers them), then the frozen ones'
     * copies (frozen_count) */
    void *weight_copies;
    size_t element_bytes;
    size_t padded_count;
    tsr_model model;
    bool stale; /* the copies changed since the last refresh */
    bool scales_loss; /* fp16 */
    tsr_loss_scaler scaler;
} tsr_precision;

/* Adds what tsr_precision_init takes for this model (nothing in fp32);
 * padded_count: the trainable length the data-parallel reductions see. */
void tsr_precision_plan(const tsr_config *cfg, const tsr_model *model, size_t padded_count,
                        tsr_memory_plan *plan);
/* Takes it from the allocated plan, creates the product context and maps
 * the model's parameters (trainable and frozen) to their copies. */
tsr_status tsr_precision_init(tsr_precision *p, const tsr_config *cfg, const tsr_model *model,
                              size_t padded_count, tsr_memory_plan *plan);
/* The trainable weights [offset, offset + n) are now `values` (the
 * optimizer's fp32 master after an update, or weights taken from a
 * checkpoint or the initialisation): rounds them into the copies. */
void tsr_precision_store(tsr_precision *p, size_t offset, const float *values, size_t n);
/* Before the forward passes that follow a store (and the all-gather of
 * the copies under the distributed optimizer) or a load: writes the
 * model's fp32 view of the 16-bit values (the spans not no_fp32_read;
 * all of params for a model without fp32_view), rounds the frozen
 * weights into theirs, and makes the context the linear kernels' one. */
void tsr_precision_refresh(tsr_precision *p);
/* An execution failure of the 16-bit products since the last call. */
tsr_status tsr_precision_take_status(tsr_precision *p);

/* The loss scale of the next iteration (1 unless fp16). */
double tsr_precision_loss_scale(const tsr_precision *p);
/* After an iteration under fp16: whether its gradients overflowed. */
void tsr_precision_scaler_update(tsr_precision *p, bool overflow);

/* Logs (rank 0) where the products' time went out of `seconds` of
 * training: products, operand rounding, weight copies, everything else. */
void tsr_precision_report(const tsr_precision *p, double seconds);
void tsr_precision_release(tsr_precision *p);

#endif /* TSR_RUNTIME_TRAIN_PRECISION_H */
