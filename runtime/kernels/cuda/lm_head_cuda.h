/*
 * lm_head_cuda.h - the output layer fused with the cross-entropy on the
 * GPU: kernels/lm_head_steps.h's steps, in its order (tsr_head_run), with
 * the device's kernels: the products through cuBLASLt (linear_cuda.h),
 * the cross-entropy steps of cuda_kernels.h. The same head the CPU runs
 * (sharding/modules/lm_head.c), so the same semantics.
 *
 * The reductions over the vocabulary shards are the caller's (a module
 * owns its collectives; kernels never communicate): `reduce` is called
 * on device memory, ordered after the work already issued on `stream`,
 * and must leave its result ordered before the work issued after it
 * (NCCL on the same stream, or a host-staged collective that
 * synchronises). On one shard pass NULL.
 *
 * Precision is the linear context's: fp32 (no TF32), or bf16 operands
 * (the caller's bf16 copy of the weight; x and the logits' gradient
 * rounded by the context) with fp32 accumulation. The statistics, the
 * loss and the gradients are fp32 in both.
 *
 * All pointers are device memory; x, dx and the scratch aligned to
 * TSR_CUDA_LINEAR_ALIGN. The linear context must have been made with the
 * shapes tsr_cuda_linear_head_shapes gives for the plan. Calls are
 * asynchronous on `stream` and use the context's buffers: one head at a
 * time per context.
 */
#ifndef TSR_KERNELS_CUDA_LM_HEAD_CUDA_H
#define TSR_KERNELS_CUDA_LM_HEAD_CUDA_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/cuda/linear_cuda.h"
#include "kernels/lm_head_steps.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x (count floats, device memory) reduced in place over the vocabulary
 * shards, ordered as said above; a status other than TSR_OK ends the
 * head. */
typedef tsr_status (*tsr_cuda_head_reduce_fn)(void *ctx, float *x, int64_t count,
                                              tsr_head_reduce_op op, void *stream);

/* weight (v_local, hidden): float under fp32, the bf16 copy under bf16;
 * dweight added to in training, NULL when the weight is frozen. */
tsr_status tsr_cuda_lm_head_forward(tsr_cuda_linear *linear, const tsr_head_plan *plan,
                                    const tsr_head_io *io, const void *weight, float *dweight,
                                    bool train, tsr_cuda_head_reduce_fn reduce,
                                    void *reduce_ctx, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_LM_HEAD_CUDA_H */
