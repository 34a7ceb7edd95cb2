/*
 * attention_cuda_plan.h - the geometry of the CUDA flash attention
 * (attention_cuda.h) as a pure host function of the problem and of the
 * device's limits: tile sizes, threads, shared memory, grids, the
 * backward's workspace. Every launch takes its geometry from a plan, so
 * what the kernels do is decided (and unit-tested) on the host.
 *
 * Shapes follow the CPU kernel (include/tessera/kernels.h): q (B, T, Hq,
 * D), k and v (B, T, Hkv, D), lse (B, Hq, T). A tile is Br query rows by
 * Bc key columns; a block is 16 x 16 threads, thread (ty, tx) holding
 * rows ty + 16 i and columns tx + 16 j of every tile it computes, so Br,
 * Bc and D are multiples of 16.
 *
 * The causal ranges below are shared by the kernels and the host (they
 * compile in both), so the tests check the very arithmetic the device
 * runs: a query block visits key blocks [0, tsr_cuda_attention_key_blocks)
 * and a key block visits query blocks [tsr_cuda_attention_first_query_block,
 * query blocks). Tiles wholly above the diagonal are never computed.
 *
 * Included by attention_cuda_plan.c, the .cu kernels and the tests.
 */
#ifndef TSR_KERNELS_CUDA_ATTENTION_CUDA_PLAN_H
#define TSR_KERNELS_CUDA_ATTENTION_CUDA_PLAN_H

#include <stdint.h>

#include "tessera/status.h"

#ifdef __CUDACC__
#define TSR_CUDA_ATTN_HD __host__ __device__
#else
#define TSR_CUDA_ATTN_HD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Threads of every attention block: 16 x 16. */
#define TSR_CUDA_ATTN_THREADS 256
/* Rows of the Di = rowsum(dO * O) kernel per block: one warp each. */
#define TSR_CUDA_ATTN_ROWDOT_ROWS 8
/* Grid limits of every CUDA device since compute capability 3.0. */
#define TSR_CUDA_ATTN_GRID_X_MAX 2147483647LL
#define TSR_CUDA_ATTN_GRID_YZ_MAX 65535LL
/* Longest sequence: row numbers plus a tile stay inside an int. */
#define TSR_CUDA_ATTN_T_MAX (1LL << 30)

/* What the plan needs to know of the device (tsr_cuda_attention_limits_query
 * reads them from the current one). */
typedef struct tsr_cuda_attention_limits {
    int64_t smem_per_block; /* bytes one block may use, opt-in maximum */
    int64_t max_threads_per_block;
} tsr_cuda_attention_limits;

/* Which kernel a tile is sized for. */
typedef enum tsr_cuda_attention_kernel {
    TSR_CUDA_ATTN_FORWARD = 0, /* Q, K, V and P tiles */
    TSR_CUDA_ATTN_BACKWARD     /* Q, dO, K, V, P/dS tiles, lse and Di rows */
} tsr_cuda_attention_kernel;

/* One kernel's launch. */
typedef struct tsr_cuda_attention_launch {
    int64_t br, bc;     /* tile: query rows x key columns (0 for the Di kernel) */
    int64_t grid[3];    /* blocks in x, y, z */
    int64_t threads;    /* per block */
    int64_t smem_bytes; /* dynamic shared memory per block */
} tsr_cuda_attention_launch;

typedef struct tsr_cuda_attention_plan {
    int64_t b, t, hq, hkv, d;
    float scale;                       /* 1/sqrt(D) */
    tsr_cuda_attention_launch forward; /* grid (query blocks, Hq, B) */
    tsr_cuda_attention_launch rowdot;  /* Di: grid (ceil(B*T*Hq / 8), 1, 1) */
    tsr_cuda_attention_launch dkv;     /* grid (key blocks, Hkv, B) */
    tsr_cuda_attention_launch dq;      /* grid (query blocks, Hq, B); tile of dkv */
    int64_t workspace_bytes;           /* the backward's: Di, (B, Hq, T) floats */
} tsr_cuda_attention_plan;

/* Whether the kernels are compiled for head dimension d (32, 64, 128). */
int tsr_cuda_attention_d_supported(int64_t d);

/* Dynamic shared memory of one block of `kernel` with a br x bc tile at
 * head dimension d: rows of D + 1 floats (a column walk then touches 32
 * banks), P rows of bc + 16 (rows 16 apart in different half-banks). */
int64_t tsr_cuda_attention_smem_bytes(tsr_cuda_attention_kernel kernel, int64_t br, int64_t bc,
                                      int64_t d);

/* The plan of one problem on a device: TSR_ERR_INVALID_ARG for a
 * malformed shape, TSR_ERR_UNSUPPORTED (saying why) for a shape or a
 * device these kernels do not serve. The first tile of 64x64, 64x32,
 * 32x32 that fits the device is taken, per kernel. */
tsr_status tsr_cuda_attention_plan_init(tsr_cuda_attention_plan *plan, int64_t b, int64_t t,
                                        int64_t hq, int64_t hkv, int64_t d,
                                        const tsr_cuda_attention_limits *limits);

/* Whether query row i sees key j (causal, within a sequence of t). */
static inline TSR_CUDA_ATTN_HD int tsr_cuda_attention_visible(int64_t i, int64_t j, int64_t t)
{
    return i < t && j <= i;
}

/* Key blocks [0, n) that the query block starting at row q0 needs:
 * through the one holding its last row's diagonal. */
static inline TSR_CUDA_ATTN_HD int64_t tsr_cuda_attention_key_blocks(int64_t q0, int64_t br,
                                                                     int64_t bc, int64_t t)
{
    int64_t last = (q0 + br < t ? q0 + br : t) - 1;
    return last / bc + 1;
}

/* The first query block that sees the key block starting at column k0:
 * the one holding row k0 (every earlier row is above the diagonal). */
static inline TSR_CUDA_ATTN_HD int64_t tsr_cuda_attention_first_query_block(int64_t k0, int64_t br)
{
    return k0 / br;
}

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_ATTENTION_CUDA_PLAN_H */
