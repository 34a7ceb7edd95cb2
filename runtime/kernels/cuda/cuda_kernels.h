/*
 * cuda_kernels.h - the GPU versions of the element-wise, norm, embedding,
 * loss and optimizer kernels of include/tessera/kernels.h (fp32, device
 * memory), for the CUDA backend's layers and optimizer step.
 *
 * Each function mirrors the CPU kernel of the same name without "cuda_":
 * same arguments in the same order, same shapes, same layouts, and
 * backward ACCUMULATES (+=) into every gradient it is given (NULL: not
 * wanted), as the CPU kernels do. Beyond them:
 * - every pointer is device memory; `stream` is a cudaStream_t (NULL: the
 *   default stream), passed as void * so that C callers need no CUDA
 *   headers. Calls are asynchronous on that stream;
 * - the return value reports bad arguments (TSR_ERR_INVALID_ARG, before
 *   anything is launched), sizes the kernels do not support
 *   (TSR_ERR_UNSUPPORTED) and launch failures (TSR_ERR_INTERNAL, with the
 *   CUDA error), each with a message naming the kernel (tsr_last_error).
 *   A fault inside a kernel surfaces at the caller's next synchronisation;
 * - a call with a size of 0 launches nothing and returns TSR_OK;
 * - results are bitwise the same run to run, and on every GPU of one
 *   architecture whatever its SM count: no floating-point atomics, and the
 *   reduction orders are fixed by the sizes alone (launch_geometry.h);
 *   sm_80 and sm_90 code may contract multiply-adds differently. They
 *   match the CPU kernels to rounding, not bitwise, except where a comment
 *   below says bitwise;
 * - block, grid and shared memory sizes come from launch_geometry.h.
 *
 * Compiled only when CMake found nvcc (runtime/kernels/CMakeLists.txt);
 * tested against the CPU kernels by
 * tests/kernels/test_kernels_cuda.c.
 */
#ifndef TSR_KERNELS_CUDA_CUDA_KERNELS_H
#define TSR_KERNELS_CUDA_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- LayerNorm: inp (N, C), weight (C), bias (C), out (N, C), mean (N), rstd (N)
 * Row statistics in double, as the CPU; dweight/dbias are column sums in a
 * fixed order (no atomics). */
tsr_status tsr_cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                      const float *weight, const float *bias, int64_t n,
                                      int64_t c, float eps, void *stream);
tsr_status tsr_cuda_layernorm_backward(float *dinp, float *dweight, float *dbias,
                                       const float *dout, const float *inp, const float *weight,
                                       const float *mean, const float *rstd, int64_t n,
                                       int64_t c, void *stream);

/* ---- RMSNorm: inp (N, C), weight (C), out (N, C), rstd (N); out = inp*rstd*weight */
tsr_status tsr_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp,
                                    const float *weight, int64_t n, int64_t c, float eps,
                                    void *stream);
tsr_status tsr_cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout,
                                     const float *inp, const float *weight, const float *rstd,
                                     int64_t n, int64_t c, void *stream);

/* ---- GELU (tanh approximation, the CPU's formula): inp (N), out (N) */
tsr_status tsr_cuda_gelu_forward(float *out, const float *inp, int64_t n, void *stream);
tsr_status tsr_cuda_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n,
                                  void *stream);

/* ---- SwiGLU: inp (N, 2F) holding [gate (F) | up (F)] per row, out (N, F) */
tsr_status tsr_cuda_swiglu_forward(float *out, const float *inp, int64_t n, int64_t f,
                                   void *stream);
tsr_status tsr_cuda_swiglu_backward(float *dinp, const float *dout, const float *inp, int64_t n,
                                    int64_t f, void *stream);

/* ---- rotary embedding (rotate-half): x (B, T, H, D), D even and at most
 * 2 * TSR_CUDA_ROPE_HALF_MAX (512). The angles are the CPU's bits (their
 * table is computed on the host, launch_geometry.h); out may alias x.
 * Positions t_offset + t only: the document-restarting variant
 * (tsr_rope_forward_docs) has no GPU version yet. */
tsr_status tsr_cuda_rope_forward(float *out, const float *x, int64_t b, int64_t t, int64_t h,
                                 int64_t d, int64_t t_offset, float base, void *stream);
tsr_status tsr_cuda_rope_backward(float *dx, const float *dout, int64_t b, int64_t t, int64_t h,
                                  int64_t d, int64_t t_offset, float base, void *stream);

/* ---- token embedding over a vocabulary slice: tokens (N), table (V_local, C),
 * out (N, C); a token outside [vocab_start, vocab_start + V_local) gets a
 * zero row. Both directions are bitwise the CPU's: backward adds each
 * token's row in token order, each table element owned by one thread. */
tsr_status tsr_cuda_embedding_forward(float *out, const int32_t *tokens, const float *table,
                                      int64_t n, int64_t c, int64_t vocab_start,
                                      int64_t vocab_local, void *stream);
tsr_status tsr_cuda_embedding_backward(float *dtable, const float *dout, const int32_t *tokens,
                                       int64_t n, int64_t c, int64_t vocab_start,
                                       int64_t vocab_local, void *stream);

/* ---- cross-entropy over a (N, V_local) logits chunk, in the CPU's four steps
 * (tsr_ce_*: a tensor-parallel caller reduces between them). target_logit
 * is bitwise the CPU's, row_max too for rows without NaN (up to the sign of
 * a zero maximum); sumexp is summed in double. Step 4 overwrites the logits
 * with their gradient; rows with dloss 0 get 0. */
tsr_status tsr_cuda_ce_row_max(float *row_max, const float *logits, int64_t n, int64_t v_local,
                               void *stream);
tsr_status tsr_cuda_ce_sumexp_target(float *sumexp, float *target_logit, const float *logits,
                                     const float *row_max, const int32_t *targets, int64_t n,
                                     int64_t v_local, int64_t vocab_start, void *stream);
tsr_status tsr_cuda_ce_loss(float *loss, const float *sumexp, const float *row_max,
                            const float *target_logit, int64_t n, void *stream);
tsr_status tsr_cuda_ce_logits_to_grad(float *logits, const float *row_max, const float *sumexp,
                                      const int32_t *targets, const float *dloss, int64_t n,
                                      int64_t v_local, int64_t vocab_start, void *stream);

/* ---- element-wise (bitwise the CPU's: one rounding each) ---- */
/* out = a + b (n); out may alias a or b */
tsr_status tsr_cuda_add_forward(float *out, const float *a, const float *b, int64_t n,
                                void *stream);
/* y += x (n) */
tsr_status tsr_cuda_accumulate(float *y, const float *x, int64_t n, void *stream);
/* x *= s */
tsr_status tsr_cuda_scale(float *x, float s, int64_t n, void *stream);

/* ---- sum of squares in double, for the gradient norm: *out (one device
 * double) = sum x[i]^2, in two passes over tsr_cuda_sumsq_plan_make(n)'s
 * partials (launch_geometry.h); workspace: device memory of at least its
 * workspace_bytes (none for n = 0, where *out = 0). Bitwise the same for a
 * given n, run to run and whatever the SM count; equal to tsr_sum_squares
 * to double rounding. */
tsr_status tsr_cuda_sum_squares(double *out, const float *x, int64_t n, void *workspace,
                                size_t workspace_bytes, void *stream);

/* ---- AdamW, tsr_adamw_update's formula and order of operations; the
 * scalar factors are computed on the host as the CPU computes them. Each
 * device operation is rounded separately (no fused multiply-add), which
 * the CPU's build may fuse: the two agree to a few ulp, not bitwise. */
tsr_status tsr_cuda_adamw_update(float *param, const float *grad, float *m, float *v,
                                 int64_t n, float lr, float beta1, float beta2, float eps,
                                 float weight_decay, int64_t step, float grad_scale,
                                 void *stream);

/* ---- bf16 <-> fp32, bitwise tsr_bf16_of_float / tsr_float_of_bf16: round to
 * nearest even, NaN kept a quiet NaN with its sign, denormals flushed to a
 * signed zero. round_floats: dst[i] = the fp32 of src[i]'s bf16 (dst may be
 * src). */
tsr_status tsr_cuda_bf16_from_floats(uint16_t *dst, const float *src, int64_t n, void *stream);
tsr_status tsr_cuda_floats_from_bf16(float *dst, const uint16_t *src, int64_t n, void *stream);
tsr_status tsr_cuda_bf16_round_floats(float *dst, const float *src, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_CUDA_KERNELS_H */
