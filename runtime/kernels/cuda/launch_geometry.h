/*
 * launch_geometry.h - what the host decides before each launch of the
 * element-wise CUDA kernels (the *_cuda.cu files beside it): threads per
 * block, blocks, dynamic shared memory, the sum of squares' partial count
 * and workspace, and the scalars some kernels receive precomputed (AdamW's
 * factors, RoPE's inverse frequencies).
 *
 * Pure host functions of their arguments: compiled in every build, with or
 * without CUDA, and unit-tested on CPUs (tests/kernels/
 * test_cuda_launch_geometry.c). The device's limits come in as a plain
 * struct, filled from cudaDeviceGetAttribute by the .cu files and by hand
 * in the tests.
 *
 * Invariants of every geometry returned with TSR_OK:
 * - threads is a whole number of warps (the block reductions shuffle over
 *   full warps) and at most max_threads_per_block;
 * - 1 <= blocks <= max_grid_x; the kernels stride over the grid, so fewer
 *   blocks than rows or elements is correct, and blocks never changes a
 *   result;
 * - shared_bytes <= max_shared_per_block.
 * Where a result is a sum (norm statistics, weight gradients, the sum of
 * squares) its rounding depends on threads and split only, which follow
 * from the sizes (and from max_threads_per_block, 1024 on every supported
 * GPU), never from the SM count: the bits are the same run to run and on
 * every GPU of one architecture.
 *
 * Sizes must be positive; an empty tensor is the caller's no-op, decided
 * before asking for a geometry (a grid of 0 blocks is a launch error).
 * Every error names the kernel it was asked for.
 */
#ifndef TSR_KERNELS_CUDA_LAUNCH_GEOMETRY_H
#define TSR_KERNELS_CUDA_LAUNCH_GEOMETRY_H

#include <stdint.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kernels' warp width; the geometry is computed for this width. */
#define TSR_CUDA_WARP 32
/* Row kernels: at most this many threads per row (a longer row is walked
 * in strides); 512 keeps 4 blocks resident per SM on sm_80/sm_90. */
#define TSR_CUDA_ROW_THREADS_MAX 512
/* Element kernels: threads per block. */
#define TSR_CUDA_ELEMENT_THREADS 256
/* Column sums: warps per block, each summing an interleaved set of rows. */
#define TSR_CUDA_COLUMN_GROUPS_MAX 8
/* Embedding backward: at most this many owners per column. */
#define TSR_CUDA_SCATTER_SLOTS_MAX 64
/* Sum of squares: threads per block, the fewest elements per thread
 * before the input is split further, and the most partials. */
#define TSR_CUDA_SUMSQ_THREADS 256
#define TSR_CUDA_SUMSQ_ITEMS 8
#define TSR_CUDA_SUMSQ_PARTIALS_MAX 1024
/* RoPE: the most rotated pairs per head (head dim up to 512), the size of
 * the frequency table passed by value to the kernel. */
#define TSR_CUDA_ROPE_HALF_MAX 256

/* What a device allows, as cudaDeviceGetAttribute reports it. */
typedef struct tsr_cuda_limits {
    int64_t sm_count;             /* cudaDevAttrMultiProcessorCount */
    int64_t max_threads_per_block;
    int64_t max_threads_per_sm;
    int64_t warp_size;            /* must be TSR_CUDA_WARP */
    int64_t max_grid_x;
    int64_t max_shared_per_block; /* bytes, without opt-in */
} tsr_cuda_limits;

typedef struct tsr_cuda_launch {
    int64_t blocks;
    int64_t threads;      /* per block */
    int64_t shared_bytes; /* dynamic shared memory per block */
    int64_t split;        /* per kernel kind: see the function that filled it */
} tsr_cuda_launch;

/* TSR_ERR_INVALID_ARG unless every limit is positive, not absurdly large
 * (so that products of them cannot overflow), the warp is TSR_CUDA_WARP
 * wide and a block holds at least one warp. */
tsr_status tsr_cuda_limits_check(const tsr_cuda_limits *limits, const char *kernel);

/* One block per row of `cols` elements, striding over rows:
 * threads = cols rounded up to whole warps, at most TSR_CUDA_ROW_THREADS_MAX
 * (and the device's limit); blocks = min(rows, blocks resident at once,
 * max_grid_x); shared_bytes = warps * reduce_bytes, the partials of one
 * block reduction (0: the kernel reduces nothing). split = 1. */
tsr_status tsr_cuda_geometry_rows(const tsr_cuda_limits *limits, int64_t rows, int64_t cols,
                                  int64_t reduce_bytes, const char *kernel,
                                  tsr_cuda_launch *launch);

/* n independent elements, grid-stride: threads = TSR_CUDA_ELEMENT_THREADS;
 * blocks = min(ceil(n / threads), blocks resident at once, max_grid_x);
 * no shared memory; split = 1. */
tsr_status tsr_cuda_geometry_elements(const tsr_cuda_limits *limits, int64_t n,
                                      const char *kernel, tsr_cuda_launch *launch);

/* Column sums over rows (the norms' weight and bias gradients): a block
 * owns strips of one warp's width of columns; split = its warps (groups),
 * min(rows, TSR_CUDA_COLUMN_GROUPS_MAX), group g summing rows g, g + split,
 * ... in order, the groups then combined in group order. threads = split
 * warps; blocks = min(strips, resident, max_grid_x); shared_bytes = threads
 * * sums * sizeof(float), sums = how many column sums the kernel makes. */
tsr_status tsr_cuda_geometry_columns(const tsr_cuda_limits *limits, int64_t rows, int64_t cols,
                                     int64_t sums, const char *kernel, tsr_cuda_launch *launch);

/* The token embedding's backward over a (vocab_local, cols) table: each
 * (column, slot) is one thread; a slot owns `split` consecutive rows of the
 * table (the last fewer), so every gradient element has exactly one owner,
 * which adds the tokens' rows in token order. slots = ceil(vocab_local /
 * split), chosen to fill the device (at most TSR_CUDA_SCATTER_SLOTS_MAX and
 * vocab_local); blocks and threads are tsr_cuda_geometry_elements' over
 * cols * slots. The result does not depend on split at all. */
tsr_status tsr_cuda_geometry_scatter(const tsr_cuda_limits *limits, int64_t cols,
                                     int64_t vocab_local, const char *kernel,
                                     tsr_cuda_launch *launch);
/* slots of a scatter geometry: ceil(vocab_local / launch->split) */
int64_t tsr_cuda_scatter_slots(const tsr_cuda_launch *launch, int64_t vocab_local);

/* The two-pass sum of squares of n floats: pass 1 runs `partials` blocks,
 * block b summing elements [b * chunk, min(n, (b + 1) * chunk)) into
 * partial b (double); pass 2 is one block adding the partials in order.
 * Both passes use `threads` threads and `shared_bytes`. A pure function of
 * n, so the summation order does not depend on the device. */
typedef struct tsr_cuda_sumsq_plan {
    int64_t partials;
    int64_t chunk;
    int64_t threads;
    int64_t shared_bytes;
    int64_t workspace_bytes; /* partials * sizeof(double), device memory */
} tsr_cuda_sumsq_plan;

tsr_status tsr_cuda_sumsq_plan_make(int64_t n, const char *kernel, tsr_cuda_sumsq_plan *plan);

/* AdamW's per-launch scalars, computed in double and rounded to float
 * once, exactly as tsr_adamw_update computes them (runtime/kernels/cpu/
 * adamw.c); step <= 0 counts as step 1. */
typedef struct tsr_cuda_adamw_factors {
    float decay;           /* 1 - lr * weight_decay */
    float beta1, one_minus_beta1;
    float beta2, one_minus_beta2;
    float step_size;       /* lr / (1 - beta1^step) */
    float bc2_sqrt;        /* sqrt(1 - beta2^step) */
    float eps;
    float grad_scale;
} tsr_cuda_adamw_factors;

void tsr_cuda_adamw_factors_make(tsr_cuda_adamw_factors *factors, float lr, float beta1,
                                 float beta2, float eps, float weight_decay, int64_t step,
                                 float grad_scale);

/* inv_freq[i] = 1 / base^(2i / d) for i < d/2, with the fp32 expression of
 * runtime/kernels/cpu/rope.c, so that the device rotates by the very angles
 * the CPU does. TSR_ERR_INVALID_ARG for d odd or not positive,
 * TSR_ERR_UNSUPPORTED for d / 2 > TSR_CUDA_ROPE_HALF_MAX. */
tsr_status tsr_cuda_rope_frequencies(float *inv_freq, int64_t d, float base, const char *kernel);

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_CUDA_LAUNCH_GEOMETRY_H */
