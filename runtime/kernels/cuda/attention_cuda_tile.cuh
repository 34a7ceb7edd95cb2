/*
 * attention_cuda_tile.cuh - what the CUDA attention's forward
 * (attention_cuda_forward.cu) and backward (attention_cuda_backward.cu)
 * share: head offsets, tile loads into shared memory, the 16x16-thread
 * tile products, the row reductions, argument checks and the dispatch from
 * a plan's (D, Br, Bc) to the compiled kernels. Internal to these two
 * files.
 *
 * Thread (ty, tx) = (threadIdx.x / 16, threadIdx.x % 16) owns rows ty + 16 i
 * and columns tx + 16 j of a tile, so the 16 threads of a row are one
 * half-warp (row reductions are shuffles within it) and a warp reads, at
 * each step, 16 consecutive columns or one row: shared-memory rows of D + 1
 * floats, P rows of Bc + 16, keep every such access free of bank conflicts.
 * Every sum runs in a fixed order (k = 0, 1, ... and a fixed shuffle tree),
 * so results do not depend on scheduling.
 */
#ifndef TSR_KERNELS_CUDA_ATTENTION_CUDA_TILE_CUH
#define TSR_KERNELS_CUDA_ATTENTION_CUDA_TILE_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/attention_cuda.h"

namespace tsr_attn {

constexpr int kThreads = TSR_CUDA_ATTN_THREADS;
constexpr int kSide = 16;
static_assert(kThreads == kSide * kSide, "a block is 16 x 16 threads");

/* Where (b, 0, h, 0) of a (B, T, H, D) tensor is, rows `stride` floats
 * apart (stride H * D). */
template <int D>
__device__ __forceinline__ int64_t head_origin(int b, int t, int64_t stride, int h)
{
    return (int64_t)b * t * stride + (int64_t)h * D;
}

template <int R, int C> __device__ __forceinline__ void zero_tile(float (&x)[R][C])
{
#pragma unroll
    for (int i = 0; i < R; i++)
#pragma unroll
        for (int j = 0; j < C; j++)
            x[i][j] = 0.0f;
}

/* Rows [r0, r0 + ROWS) of one head of a (B, T, H, D) tensor, times mul,
 * into dst (row-major, ld D + 1); rows at or past t are zero. src is the
 * head's row 0, rows `stride` floats apart. */
template <int ROWS, int D>
__device__ __forceinline__ void load_rows(float *dst, const float *__restrict__ src,
                                          int64_t stride, int r0, int t, float mul)
{
    for (int e = threadIdx.x; e < ROWS * D; e += kThreads) {
        int r = e / D, c = e % D;
        float x = 0.0f;
        if (r0 + r < t)
            x = src[(int64_t)(r0 + r) * stride + c] * mul;
        dst[r * (D + 1) + c] = x;
    }
}

/* Key block [k0, k0 + BC) of K and V into sk and sv: k and v point at the
 * key/value head's row 0. */
template <int BC, int D>
__device__ __forceinline__ void load_key_block(float *sk, float *sv, const float *__restrict__ k,
                                               const float *__restrict__ v, int64_t stride,
                                               int k0, int t)
{
    load_rows<BC, D>(sk, k, stride, k0, t, 1.0f);
    load_rows<BC, D>(sv, v, stride, k0, t, 1.0f);
}

/* acc[i][j] = sum over k < D of a[row i][k] * b[row j][k], rows ty + 16 i
 * of a and tx + 16 j of b (both ld D + 1): a tile of A B^T. */
template <int D, int RM, int RN>
__device__ __forceinline__ void tile_abt(float (&acc)[RM][RN], const float *a, const float *b,
                                         int ty, int tx)
{
    constexpr int LD = D + 1;
    zero_tile(acc);
#pragma unroll 4
    for (int k = 0; k < D; k++) {
        float av[RM], bv[RN];
#pragma unroll
        for (int i = 0; i < RM; i++)
            av[i] = a[(ty + kSide * i) * LD + k];
#pragma unroll
        for (int j = 0; j < RN; j++)
            bv[j] = b[(tx + kSide * j) * LD + k];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < RN; j++)
                acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

/* acc[i][j] += sum over c < N of p(ty + 16 i, c) * x[c][tx + 16 j], with
 * p(r, c) = p[r * SR + c * SC] (SR = ld, SC = 1 for P; SR = 1, SC = ld for
 * P^T) and x row-major with ld D + 1: an output tile over D. */
template <int D, int RM, int N, int SR, int SC>
__device__ __forceinline__ void tile_px(float (&acc)[RM][D / kSide], const float *p,
                                        const float *x, int ty, int tx)
{
    constexpr int LD = D + 1, DC = D / kSide;
#pragma unroll 4
    for (int c = 0; c < N; c++) {
        float pv[RM], xv[DC];
#pragma unroll
        for (int i = 0; i < RM; i++)
            pv[i] = p[(ty + kSide * i) * SR + c * SC];
#pragma unroll
        for (int j = 0; j < DC; j++)
            xv[j] = x[c * LD + tx + kSide * j];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < DC; j++)
                acc[i][j] = fmaf(pv[i], xv[j], acc[i][j]);
    }
}

/* Max and sum over the 16 threads of a row (one half-warp; every lane of
 * the warp takes part). The butterfly leaves the same bits in all 16. */
__device__ __forceinline__ float row_max(float x)
{
#pragma unroll
    for (int off = kSide / 2; off > 0; off >>= 1)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
    return x;
}

__device__ __forceinline__ float row_sum(float x)
{
#pragma unroll
    for (int off = kSide / 2; off > 0; off >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, off);
    return x;
}

/* Only the causal pattern without dropout is implemented. */
static inline tsr_status check_pattern(const tsr_attn_mask *mask, const tsr_dropout *dropout,
                                       const char *pass)
{
    if (mask != NULL)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention %s: only causal attention (mask NULL) is "
                             "implemented on the GPU; windows, sparse patterns, documents and "
                             "prefixes need the CPU kernel for now",
                             pass);
    if (dropout != NULL && dropout->p > 0.0f)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention %s: attention dropout (p %g) is not implemented "
                             "on the GPU; use --attention-dropout 0 or the CPU kernel",
                             pass, (double)dropout->p);
    return TSR_OK;
}

static inline tsr_status check_cuda(cudaError_t err, const char *what)
{
    if (err == cudaSuccess)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_INTERNAL, "CUDA attention: %s failed: %s", what,
                         cudaGetErrorString(err));
}

/* Calls launch.run<D, BR, BC>() for the plan's (d, br, bc): the
 * combinations attention_cuda_plan.c can choose. */
template <typename Launch>
static tsr_status dispatch(const Launch &launch, int64_t d, int64_t br, int64_t bc)
{
#define TSR_ATTN_CASE(DD, BR, BC)                                                             \
    if (d == DD && br == BR && bc == BC)                                                       \
        return launch.template run<DD, BR, BC>();
#define TSR_ATTN_CASES(DD)                                                                    \
    TSR_ATTN_CASE(DD, 64, 64) TSR_ATTN_CASE(DD, 64, 32) TSR_ATTN_CASE(DD, 32, 32)
    TSR_ATTN_CASES(32)
    TSR_ATTN_CASES(64)
    TSR_ATTN_CASES(128)
#undef TSR_ATTN_CASES
#undef TSR_ATTN_CASE
    return tsr_error_set(TSR_ERR_INTERNAL,
                         "CUDA attention: no kernel compiled for D %lld with a %lldx%lld tile; "
                         "the plan and the kernels disagree",
                         (long long)d, (long long)br, (long long)bc);
}

/* Opts the kernel in to more than 48 KiB of dynamic shared memory. */
template <typename Kernel>
static tsr_status allow_smem(Kernel *kernel, int64_t bytes)
{
    return check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)bytes),
                      "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
}

/* A tiled kernel over the plan's launch g: the opt-in to its shared
 * memory, the launch on the stream, and the launch's status as `what`. */
template <typename... Params, typename... Args>
static tsr_status launch_tiles(const tsr_cuda_attention_launch *g, cudaStream_t stream,
                               const char *what, void (*kernel)(Params...), Args... args)
{
    tsr_status st = allow_smem(kernel, g->smem_bytes);
    if (st != TSR_OK)
        return st;
    dim3 grid((unsigned)g->grid[0], (unsigned)g->grid[1], (unsigned)g->grid[2]);
    kernel<<<grid, (unsigned)g->threads, (size_t)g->smem_bytes, stream>>>(args...);
    return check_cuda(cudaGetLastError(), what);
}

} /* namespace tsr_attn */

#endif /* TSR_KERNELS_CUDA_ATTENTION_CUDA_TILE_CUH */
