/*
 * precision.h - what --bf16 adds to training: bf16 compute copies of the
 * model's weights beside the fp32 master the optimizer updates, the bf16
 * operand workspace, and the matrix-product context the linear kernels
 * use while it is active (kernels/matmul_bf16.h).
 *
 * Megatron's rules, as far as this build keeps them: the optimizer, its
 * state, the gradients and their reductions, norms, softmax, attention
 * statistics and losses are fp32; the weights a product reads are the
 * master rounded to bf16 once per update; a product's activation operand
 * is rounded to bf16 as it is read, and its sum is fp32. Activations are
 * held in fp32 (Megatron holds them in bf16: not yet done here, so saved
 * activations do not halve). Checkpoints hold the fp32 master, so fp32
 * and bf16 runs load each other's.
 */
#ifndef TSR_RUNTIME_TRAIN_PRECISION_H
#define TSR_RUNTIME_TRAIN_PRECISION_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "kernels/matmul_bf16.h"
#include "tessera/config.h"
#include "train/model.h"

typedef struct tsr_precision {
    tsr_matmul_bf16 *matmul; /* NULL: fp32 training */
    uint16_t *weights_bf16;  /* param_count + frozen_count */
} tsr_precision;

/* Adds what tsr_precision_init takes for this model (nothing in fp32). */
void tsr_precision_plan(const tsr_config *cfg, const tsr_model *model, tsr_memory_plan *plan);
/* Takes it from the allocated plan, creates the product context and maps
 * the model's parameters (trainable and frozen) to their copies. */
tsr_status tsr_precision_init(tsr_precision *p, const tsr_config *cfg, const tsr_model *model,
                              tsr_memory_plan *plan);
/* Before the forward passes that follow a parameter update or load:
 * rewrites the copies and makes the context the linear kernels' one. */
void tsr_precision_refresh(tsr_precision *p);
/* An execution failure of the bf16 products since the last call. */
tsr_status tsr_precision_take_status(tsr_precision *p);
void tsr_precision_release(tsr_precision *p);

#endif /* TSR_RUNTIME_TRAIN_PRECISION_H */
