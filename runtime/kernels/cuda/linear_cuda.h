/*
 * linear_cuda.h - the linear layer's products on the GPU through cuBLASLt:
 * the device counterpart of tsr_linear_forward/backward
 * (include/tessera/kernels.h), same shapes and semantics.
 *
 * inp (N, IC), weight (OC, IC) row-major, bias (OC) or NULL, out (N, OC):
 *   forward   out = inp @ weight^T + bias         (overwrites out)
 *   backward  dinp += dout @ weight; dweight += dout^T @ inp;
 *             dbias += colsum(dout)              (accumulates; any may be NULL)
 *
 * A context is created once, at start-up, for the (N, IC, OC) shapes the
 * model will use: it holds the cuBLASLt handle, the matmul descriptors and
 * matrix layouts of every product of every shape, the algorithm the
 * heuristic chose for each (once; a call only looks it up), the workspace
 * and, for bf16, the operand copies. Nothing is created or allocated in a
 * step; a shape not given at creation is refused.
 *
 * Precisions:
 *   TSR_CUDA_LINEAR_FP32  weight is float; CUBLAS_COMPUTE_32F, which
 *                         never uses TF32 (that is COMPUTE_32F_FAST_TF32),
 *                         so the products compare with the CPU's at 1e-5.
 *   TSR_CUDA_LINEAR_BF16  weight is the caller's bf16 copy (uint16_t bits,
 *                         device memory, same layout); inp and dout are
 *                         rounded to bf16 (nearest even) by the context's
 *                         own kernel; accumulation, out, dinp, dweight,
 *                         bias and dbias stay fp32 (CUBLAS_COMPUTE_32F).
 *
 * Pointers are device memory aligned to TSR_CUDA_LINEAR_ALIGN bytes;
 * stream is a cudaStream_t (NULL: the default stream). Calls are
 * asynchronous, and share the context's workspace and bf16 buffers: issue
 * one context's calls on one stream (or order them). Products of one
 * shape on one device give the same bits run to run (one algorithm,
 * chosen once; cuBLASLt's reductions are deterministic, the bias
 * gradient's column sum uses no atomics).
 */
#ifndef TSR_KERNELS_CUDA_LINEAR_CUDA_H
#define TSR_KERNELS_CUDA_LINEAR_CUDA_H

#include <stdint.h>

#include "kernels/cuda/linear_cuda_plan.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_cuda_linear tsr_cuda_linear;

/* A context on the current device for `count` shapes (repeats allowed). */
tsr_status tsr_cuda_linear_create(tsr_cuda_linear **linear, tsr_cuda_linear_precision precision,
                                  const tsr_cuda_linear_shape *shapes, int64_t count);
void tsr_cuda_linear_destroy(tsr_cuda_linear *linear);

/* Device memory the context holds, for the memory report. */
int64_t tsr_cuda_linear_device_bytes(const tsr_cuda_linear *linear);

tsr_status tsr_cuda_linear_forward(tsr_cuda_linear *linear, float *out, const float *inp,
                                   const void *weight, const float *bias, int64_t n,
                                   int64_t in_features, int64_t out_features, void *stream);
tsr_status tsr_cuda_linear_backward(tsr_cuda_linear *linear, float *dinp, float *dweight,
                                    float *dbias, const float *dout, const float *inp,
                                    const void *weight, int64_t n, int64_t in_features,
                                    int64_t out_features, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_LINEAR_CUDA_H */
