/*
 * matmul16.h - the 16-bit matrix products of --bf16 and --fp16.
 *
 * While a context is active, tsr_linear_forward, _forward_add and
 * _backward compute their products from operands rounded to the
 * context's format, with fp32 accumulation into their fp32 outputs, as
 * Megatron's 16-bit GEMMs do:
 *   bf16: oneDNN's bf16 matmul (matmul16_onednn.c) where oneDNN has a
 *         kernel for this CPU (AVX512-BF16 or AMX); elsewhere the operands
 *         rounded to bf16 and multiplied by sgemm, which computes the same
 *         sums (below) slower than fp32 does;
 *   fp16: the operands rounded to fp16 (overflowing to inf above 65504,
 *         which is what loss scaling watches for) and multiplied by sgemm.
 * A product of two bf16 or two fp16 values is exact in fp32 (8 or 11
 * significant bits each), so sgemm over the rounded values gives the sums
 * of a 16-bit GEMM accumulating in fp32, as oneDNN's does; the two differ
 * only in the order of the fp32 additions (this CPU has no fp16 matrix
 * unit and oneDNN 2.6 no fp16 matmul for it).
 * Weights whose fp32 addresses lie in a mapped range (the model's
 * parameters) are read from the range's 16-bit copy: for the trainable
 * ones the 16-bit weights themselves, which the trainer rounds from its
 * fp32 master after each update; for frozen ones a copy that
 * tsr_matmul16_refresh rewrites from their fp32 values. Every other
 * operand is rounded into the context's workspace, in row blocks when it
 * is larger than the workspace. Elementwise kernels, norms,
 * softmax, attention and the losses are untouched and stay fp32.
 *
 * bf16's oneDNN primitives are created by tsr_matmul16_create, at
 * start-up; a step only executes them.
 */
#ifndef TSR_KERNELS_MATMUL16_H
#define TSR_KERNELS_MATMUL16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

typedef enum tsr_matmul16_format { TSR_MATMUL16_BF16 = 0, TSR_MATMUL16_FP16 } tsr_matmul16_format;

typedef struct tsr_matmul16 tsr_matmul16;

#define TSR_MATMUL16_MAX_MAPS 4

/* What multiplies the rounded operands. */
typedef enum tsr_matmul16_engine {
    TSR_MATMUL16_ONEDNN = 0, /* bf16 only: oneDNN's bf16 matmul, bf16 operands */
    TSR_MATMUL16_SGEMM       /* sgemm over the fp32 values of the rounded operands */
} tsr_matmul16_engine;

/* The engine a run of this format takes here: bf16 oneDNN's where it has
 * an optimized (not its reference) bf16 matmul for this CPU, else sgemm,
 * with the reason in why (may be NULL; "" when oneDNN runs it); fp16
 * always sgemm. Asked once and remembered: the answer never changes. */
tsr_matmul16_engine tsr_matmul16_engine_for(tsr_matmul16_format format, char *why,
                                            size_t why_size);
/* Whether this engine can compute this format's products here (tests run
 * each that can); when not, why gets the reason. */
bool tsr_matmul16_engine_runs(tsr_matmul16_format format, tsr_matmul16_engine engine, char *why,
                              size_t why_size);
const char *tsr_matmul16_format_name(tsr_matmul16_format format);
/* What computes the products ("oneDNN gemm:jit", "sgemm on fp16-rounded
 * operands"), for logs. */
const char *tsr_matmul16_impl(const tsr_matmul16 *ctx);

/* Bytes of one element of a weight copy: 2, bf16 or IEEE half bits,
 * whatever the engine (sgemm widens the copy's rows block by block). */
size_t tsr_matmul16_element_bytes(tsr_matmul16_format format);
/* Bytes of workspace for operands of up to operand_floats elements at a
 * time (larger ones are cut into row blocks): two halves of 2-byte
 * elements for oneDNN, of 4-byte ones (fp32 values) for sgemm. */
size_t tsr_matmul16_workspace_bytes(tsr_matmul16_format format, tsr_matmul16_engine engine,
                                    size_t operand_floats);
/* workspace: tsr_matmul16_workspace_bytes() bytes, 4-byte aligned, owned
 * by the caller. An engine that cannot run the format here is refused
 * with the reason (tsr_matmul16_engine_runs). */
tsr_status tsr_matmul16_create(tsr_matmul16_format format, tsr_matmul16_engine engine,
                               void *workspace, size_t operand_floats, tsr_matmul16 **out);
void tsr_matmul16_destroy(tsr_matmul16 *ctx);
/* copy (count elements of tsr_matmul16_element_bytes) is the compute
 * copy of the weights whose fp32 addresses are master (count floats).
 * refreshed: tsr_matmul16_refresh rewrites it from master; when not, the
 * copy is the weights' value itself, kept by its owner (tsr_matmul16_round)
 * and master only names addresses (it need not be readable). */
tsr_status tsr_matmul16_map(tsr_matmul16 *ctx, const float *master, void *copy, size_t count,
                            bool refreshed);
/* Rounds every refreshed map's master into its copy (after an update, a
 * load). */
void tsr_matmul16_refresh(tsr_matmul16 *ctx);
/* n fp32 values rounded to the context's format at dst (n elements), and
 * back: the fp32 value of each rounded element (both counted as weight
 * copy time). */
void tsr_matmul16_round(tsr_matmul16 *ctx, void *dst, const float *src, size_t n);
void tsr_matmul16_widen(tsr_matmul16 *ctx, float *dst, const void *src, size_t n);
/* The first execution failure since the last call, cleared (TSR_OK when
 * none): the linear kernels return nothing, so the trainer asks. */
tsr_status tsr_matmul16_take_status(tsr_matmul16 *ctx);

/* Where a context's time went since it was made: the products, the
 * rounding of operands, the weight copies; and the products' FLOPs. */
typedef struct tsr_matmul16_times {
    double product_s, rounding_s, refresh_s;
    double flops;
} tsr_matmul16_times;
tsr_matmul16_times tsr_matmul16_times_of(const tsr_matmul16 *ctx);

/* While ctx is active, other kernels that take a weight read it as the
 * products do: the 16-bit copy of w (count floats) when w is mapped (NULL
 * when not), whose n elements at copy widen to fp32 values into dst (safe
 * to call from several threads). */
const void *tsr_matmul16_copy_of(const tsr_matmul16 *ctx, const float *w, size_t count);
void tsr_matmul16_widen_copy(const tsr_matmul16 *ctx, float *dst, const void *copy, size_t n);
size_t tsr_matmul16_copy_element_bytes(const tsr_matmul16 *ctx);

/* Makes ctx the one the linear kernels use; NULL: fp32 products. */
void tsr_matmul16_activate(tsr_matmul16 *ctx);
tsr_matmul16 *tsr_matmul16_active(void);

/* The linear kernels' products (kernels.h shapes). forward: out = (or +=
 * when accumulate) inp @ weight^T. backward: dinp += dout @ weight and
 * dweight += dout^T @ inp, either may be NULL. */
void tsr_matmul16_linear_forward(tsr_matmul16 *ctx, float *out, const float *inp,
                                 const float *weight, int64_t n, int64_t in_features,
                                 int64_t out_features, bool accumulate);
void tsr_matmul16_linear_backward(tsr_matmul16 *ctx, float *dinp, float *dweight,
                                  const float *dout, const float *inp, const float *weight,
                                  int64_t n, int64_t in_features, int64_t out_features);

#endif /* TSR_KERNELS_MATMUL16_H */
