/*
 * optimizer_cuda.h - the optimizer step on the GPU: the gradient sum of
 * squares and AdamW of optimizer.h, over the very pieces the CPU's walks
 * make (tsr_optimizer_norm_pieces, tsr_optimizer_adamw_pieces), each run
 * by the device's kernel (kernels/cuda/cuda_kernels.h).
 *
 * The model's params and grads, and master, m and v, are device memory
 * laid out as on the CPU (the same offsets, spans, tensors and shard
 * ranges, which stay host structures). Calls are asynchronous on `stream`
 * except where said.
 *
 * Compiled only when CMake found nvcc; tested against the CPU optimizer by
 * tests/train/test_optimizer_cuda.c (skipped without a GPU).
 */
#ifndef TSR_RUNTIME_TRAIN_OPTIMIZER_CUDA_H
#define TSR_RUNTIME_TRAIN_OPTIMIZER_CUDA_H

#include <stddef.h>

#include "optimizer.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Device workspace one piece's sum of squares needs, for any piece size. */
size_t tsr_cuda_optimizer_workspace_bytes(void);

/* The sum of squares of the gradients this rank counts, into *sumsq (host):
 * each piece's in double into partials[i] (device memory, one double per
 * piece: tsr_optimizer_norm_piece_count), copied into host_partials (as
 * many, host memory) and added there in the CPU's order
 * (tsr_optimizer_combine_sumsq). Synchronises the stream: the host reads the norm (clipping, the
 * log), as Megatron's step does. */
tsr_status tsr_cuda_optimizer_grad_sumsq(const tsr_model *model, const tsr_param_shard *shard,
                                         void *workspace, double *partials,
                                         double *host_partials, double *sumsq, void *stream);

/* AdamW over every piece this rank updates, as tsr_optimizer_adamw. */
tsr_status tsr_cuda_optimizer_adamw(const tsr_model *model, const tsr_param_shard *shard,
                                    float *master, float *m, float *v,
                                    const tsr_adamw_args *args, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* TSR_RUNTIME_TRAIN_OPTIMIZER_CUDA_H */
