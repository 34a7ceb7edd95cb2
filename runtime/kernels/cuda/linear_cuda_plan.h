/*
 * linear_cuda_plan.h - the host side of the cuBLASLt linear products
 * (linear_cuda.h): shape checks, how each row-major product of a linear
 * layer is put to cuBLASLt's column-major GEMM, the buffers a context
 * allocates at creation, and the geometry of its small kernels. Pure host
 * code, built in every configuration and unit-tested on CPUs; the .cu
 * side only executes what these functions decide.
 *
 * Shapes are those of tsr_linear_forward/backward: inp (N, IC), weight
 * (OC, IC) row-major, bias (OC), out (N, OC).
 */
#ifndef TSR_KERNELS_CUDA_LINEAR_CUDA_PLAN_H
#define TSR_KERNELS_CUDA_LINEAR_CUDA_PLAN_H

#include <stdint.h>

#include "kernels/lm_head_steps.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Threads per block of the context's own kernels (bias, column sums,
 * bf16 conversion). */
#define TSR_CUDA_LINEAR_THREADS 256
/* Grid-stride loops use at most this many blocks: enough to fill any
 * current GPU several times over. */
#define TSR_CUDA_LINEAR_MAX_BLOCKS 4096
/* The column sum of dbias splits the rows into ceil(N / MIN_ROWS) chunks,
 * at most MAX_CHUNKS, of equal length (the last may be shorter): enough
 * blocks to fill the GPU for narrow outputs, few partial sums for wide. */
#define TSR_CUDA_COLSUM_MAX_CHUNKS 32
#define TSR_CUDA_COLSUM_MIN_ROWS 64
/* Every device pointer given to a product must be aligned to this; the
 * algorithms are chosen (once, before any pointer is known) for it. */
#define TSR_CUDA_LINEAR_ALIGN 16

typedef enum tsr_cuda_linear_precision {
    TSR_CUDA_LINEAR_FP32 = 0, /* fp32 operands, fp32 compute, no TF32 */
    TSR_CUDA_LINEAR_BF16      /* bf16 operands, fp32 accumulation and outputs */
} tsr_cuda_linear_precision;

typedef struct tsr_cuda_linear_shape {
    int64_t n, in_features, out_features;
} tsr_cuda_linear_shape;

/* The three products of a linear layer. */
typedef enum tsr_cuda_linear_product {
    TSR_CUDA_LINEAR_FORWARD = 0, /* out = inp @ weight^T (+ bias, written first) */
    TSR_CUDA_LINEAR_DINP,        /* dinp += dout @ weight */
    TSR_CUDA_LINEAR_DWEIGHT,     /* dweight += dout^T @ inp */
    TSR_CUDA_LINEAR_PRODUCTS
} tsr_cuda_linear_product;

/* The caller's buffers a GEMM operand can be. */
typedef enum tsr_cuda_linear_buffer {
    TSR_CUDA_BUF_WEIGHT = 0,
    TSR_CUDA_BUF_INP,
    TSR_CUDA_BUF_DOUT,
    TSR_CUDA_BUF_OUT,
    TSR_CUDA_BUF_DINP,
    TSR_CUDA_BUF_DWEIGHT
} tsr_cuda_linear_buffer;

/* A matrix as cuBLASLt is told it: the stored buffer read column-major,
 * before any transposition. */
typedef struct tsr_cuda_gemm_matrix {
    tsr_cuda_linear_buffer buffer;
    int64_t rows, cols, ld;
} tsr_cuda_gemm_matrix;

/* C (m x n) = op(A) (m x k) @ op(B) (k x n) + beta C, column-major. */
typedef struct tsr_cuda_gemm_map {
    int trans_a, trans_b; /* 1: op(X) = X^T */
    int64_t m, n, k;
    tsr_cuda_gemm_matrix a, b, c;
    float beta; /* 1 to accumulate; the forward's 0 becomes 1 after a bias fill */
} tsr_cuda_gemm_map;

/* Buffers a context allocates at creation, in bytes. */
typedef struct tsr_cuda_linear_buffers {
    int64_t workspace_bytes; /* cuBLASLt's */
    int64_t inp_bf16_bytes;  /* bf16 copy of inp (largest N * IC); 0 under fp32 */
    int64_t dout_bf16_bytes; /* bf16 copy of dout (largest N * OC); 0 under fp32 */
    int64_t colsum_bytes;    /* dbias partial sums (largest chunks * OC floats) */
    int64_t total_bytes;
} tsr_cuda_linear_buffers;

/* The column sum of dout (N, OC): a chunks x OC grid of partial sums,
 * then one pass adding them in chunk order (no atomics: the same bits
 * every run). */
typedef struct tsr_cuda_colsum_plan {
    int64_t chunks, rows_per_chunk;
    int64_t grid_x; /* blocks of TSR_CUDA_LINEAR_THREADS columns */
} tsr_cuda_colsum_plan;

/* TSR_ERR_INVALID_ARG for a size below 1, TSR_ERR_UNSUPPORTED for one of
 * 2^31 or more. */
tsr_status tsr_cuda_linear_shape_check(const tsr_cuda_linear_shape *shape);

/* How `product` of `shape` is put to cuBLASLt. */
tsr_status tsr_cuda_gemm_map_init(tsr_cuda_gemm_map *map, tsr_cuda_linear_product product,
                                  const tsr_cuda_linear_shape *shape);

/* cuBLASLt's workspace for a device of compute capability sm_major.x:
 * 32 MiB on Hopper and later, 4 MiB before (NVIDIA's recommendations). */
int64_t tsr_cuda_linear_workspace_bytes(int sm_major);

/* Blocks of a grid-stride loop over count elements (at least 1). */
int64_t tsr_cuda_linear_stride_blocks(int64_t count);

/* The column-sum geometry of dout (n, oc); n, oc >= 1. */
void tsr_cuda_colsum_plan_init(tsr_cuda_colsum_plan *plan, int64_t n, int64_t oc);

/* The buffers a context for these shapes allocates; checks every shape,
 * the precision, and that bf16 has a device for it (compute capability
 * 8.0 or newer). */
tsr_status tsr_cuda_linear_buffers_plan(tsr_cuda_linear_buffers *buffers,
                                        tsr_cuda_linear_precision precision,
                                        const tsr_cuda_linear_shape *shapes, int64_t count,
                                        int sm_major);

/* The products of the fused LM head (kernels/lm_head_steps.h) on the GPU,
 * to give tsr_cuda_linear_create: the full chunk and, where it differs,
 * the last (*count 1 or 2); refused as tsr_cuda_linear_shape_check. */
tsr_status tsr_cuda_linear_head_shapes(const tsr_head_plan *plan, tsr_cuda_linear_shape shapes[2],
                                       int64_t *count);

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_LINEAR_CUDA_PLAN_H */
