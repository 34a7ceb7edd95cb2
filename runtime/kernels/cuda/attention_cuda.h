/*
 * attention_cuda.h - causal self-attention with grouped query heads on the
 * GPU, flash-style, fp32 in and out with fp32 statistics: the device
 * counterpart of tsr_attention_forward/backward (include/tessera/kernels.h)
 * with the same layouts and semantics.
 *
 * q (B, T, Hq, D), k and v (B, T, Hkv, D), query head h reads key/value
 * head h / (Hq/Hkv); out (B, T, Hq, D), lse (B, Hq, T) the log-sum-exp of
 * each query's scaled scores; scale 1/sqrt(D). Forward overwrites out and
 * lse; backward ACCUMULATES (+=) into dq, dk and dv, any of which may be
 * NULL. Scores are computed in tiles through shared memory with an online
 * softmax: no (T, T) matrix is ever held in device memory, and tiles
 * wholly above the diagonal are never computed. Results are bitwise the
 * same run to run (no atomics; every output has one writer that sums in a
 * fixed order).
 *
 * This increment serves the causal mask only (mask NULL in the CPU API)
 * and no attention dropout: a non-NULL mask, or a dropout with p > 0, is
 * refused with TSR_ERR_UNSUPPORTED. Head dimensions 32, 64 and 128.
 *
 * Every pointer is device memory; stream is a cudaStream_t (NULL: the
 * default stream), so that C callers need no CUDA headers. The calls are
 * asynchronous: a TSR_OK says the launches were accepted. The plan comes
 * from tsr_cuda_attention_plan_init() with the limits of the device that
 * runs the kernels, made once at start-up.
 */
#ifndef TSR_KERNELS_CUDA_ATTENTION_CUDA_H
#define TSR_KERNELS_CUDA_ATTENTION_CUDA_H

#include "kernels/cuda/attention_cuda_plan.h"
#include "tessera/kernels.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The limits of the current device, for tsr_cuda_attention_plan_init. */
tsr_status tsr_cuda_attention_limits_query(tsr_cuda_attention_limits *limits);

/* out and lse from q, k, v (shapes in the plan). */
tsr_status tsr_cuda_attention_forward(const tsr_cuda_attention_plan *plan, float *out, float *lse,
                                      const float *q, const float *k, const float *v,
                                      const tsr_attn_mask *mask, const tsr_dropout *dropout,
                                      void *stream);

/* dq, dk, dv += the gradients of out through dout; out and lse are the
 * forward's. workspace: plan->workspace_bytes of device memory (Di), not
 * read before it is written, in use until the launches complete. */
tsr_status tsr_cuda_attention_backward(const tsr_cuda_attention_plan *plan, float *dq, float *dk,
                                       float *dv, const float *dout, const float *q, const float *k,
                                       const float *v, const float *out, const float *lse,
                                       const tsr_attn_mask *mask, const tsr_dropout *dropout,
                                       void *workspace, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_ATTENTION_CUDA_H */
