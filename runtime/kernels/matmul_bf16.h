/*
 * matmul_bf16.h - the bf16 matrix products of --bf16 (oneDNN's matmul).
 *
 * While a context is active, tsr_linear_forward, _forward_add and
 * _backward compute their products from bf16 operands with fp32
 * accumulation into their fp32 outputs, as Megatron's bf16 GEMMs do.
 * Weights whose fp32 values lie in a mapped range (the model's parameters:
 * the optimizer's fp32 master) are read from the range's bf16 copy, which
 * tsr_matmul_bf16_refresh rewrites after each parameter update; every
 * other operand is rounded into the context's workspace, in row blocks
 * when it is larger than the workspace. Elementwise kernels, norms,
 * softmax, attention and the losses are untouched and stay fp32.
 *
 * The oneDNN primitives (one per operand layout and per accumulate or
 * overwrite, shapes given at execution) are created by
 * tsr_matmul_bf16_create, at start-up; a step only executes them.
 * Without oneDNN at build time every function here reports that --bf16
 * is unavailable.
 */
#ifndef TSR_KERNELS_MATMUL_BF16_H
#define TSR_KERNELS_MATMUL_BF16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

typedef struct tsr_matmul_bf16 tsr_matmul_bf16;

#define TSR_MATMUL_BF16_MAX_MAPS 4

/* Whether --bf16 can run on this CPU with this build: oneDNN is built in
 * and offers an optimized (not its reference) bf16 matmul here. When not,
 * why (may be NULL) gets the reason. Creates and frees one primitive. */
bool tsr_matmul_bf16_supported(char *why, size_t why_size);
/* The implementation oneDNN chose ("gemm:jit", ...), for logs; "" before
 * a context exists. */
const char *tsr_matmul_bf16_impl(const tsr_matmul_bf16 *ctx);

/* Bytes of workspace for operands of up to operand_floats elements at a
 * time (larger ones are cut into row blocks). */
size_t tsr_matmul_bf16_workspace_bytes(size_t operand_floats);
/* workspace: tsr_matmul_bf16_workspace_bytes(operand_floats) bytes,
 * 2-byte aligned, owned by the caller. */
tsr_status tsr_matmul_bf16_create(void *workspace, size_t operand_floats, tsr_matmul_bf16 **out);
void tsr_matmul_bf16_destroy(tsr_matmul_bf16 *ctx);
/* copy (count bf16) is the compute copy of master (count fp32). */
tsr_status tsr_matmul_bf16_map(tsr_matmul_bf16 *ctx, const float *master, uint16_t *copy,
                               size_t count);
/* Rounds every mapped master into its copy (after an update, a load). */
void tsr_matmul_bf16_refresh(tsr_matmul_bf16 *ctx);
/* The first execution failure since the last call, cleared (TSR_OK when
 * none): the linear kernels return nothing, so the trainer asks. */
tsr_status tsr_matmul_bf16_take_status(tsr_matmul_bf16 *ctx);

/* Makes ctx the one the linear kernels use; NULL: fp32 products. */
void tsr_matmul_bf16_activate(tsr_matmul_bf16 *ctx);
tsr_matmul_bf16 *tsr_matmul_bf16_active(void);

/* The linear kernels' products (kernels.h shapes). forward: out = (or +=
 * when accumulate) inp @ weight^T. backward: dinp += dout @ weight and
 * dweight += dout^T @ inp, either may be NULL. */
void tsr_matmul_bf16_linear_forward(tsr_matmul_bf16 *ctx, float *out, const float *inp,
                                    const float *weight, int64_t n, int64_t in_features,
                                    int64_t out_features, bool accumulate);
void tsr_matmul_bf16_linear_backward(tsr_matmul_bf16 *ctx, float *dinp, float *dweight,
                                     const float *dout, const float *inp, const float *weight,
                                     int64_t n, int64_t in_features, int64_t out_features);

#endif /* TSR_KERNELS_MATMUL_BF16_H */
