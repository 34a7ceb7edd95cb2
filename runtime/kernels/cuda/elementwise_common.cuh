/*
 * elementwise_common.cuh - what the element-wise CUDA kernel files share
 * (internal, included by the *_cuda.cu files beside it only): the device
 * limits query feeding launch_geometry.h, argument and post-launch checks
 * that name the kernel, the launch of a geometry, grid-stride indices, and
 * the warp and block reductions.
 *
 * The reductions are deterministic: a warp sums by an xor butterfly, after
 * which every lane holds the same bits (each step adds the same two values,
 * and IEEE addition is commutative); a block then adds its warps' sums in
 * warp order. The result depends on blockDim only, which the geometry fixes
 * from the sizes. Every thread of the block must call a reduction (no early
 * return before one) and blockDim.x must be a whole number of warps.
 */
#ifndef TSR_KERNELS_CUDA_ELEMENTWISE_COMMON_CUH
#define TSR_KERNELS_CUDA_ELEMENTWISE_COMMON_CUH

#include <cuda_runtime.h>
#include <inttypes.h>
#include <stdint.h>

#include "kernels/cuda/launch_geometry.h"
#include "tessera/status.h"

/* The current device's limits. */
static inline tsr_status tsr_cuda_limits_query(tsr_cuda_limits *limits, const char *kernel)
{
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    const struct {
        cudaDeviceAttr attr;
        int64_t *value;
    } wanted[] = {
        {cudaDevAttrMultiProcessorCount, &limits->sm_count},
        {cudaDevAttrMaxThreadsPerBlock, &limits->max_threads_per_block},
        {cudaDevAttrMaxThreadsPerMultiProcessor, &limits->max_threads_per_sm},
        {cudaDevAttrWarpSize, &limits->warp_size},
        {cudaDevAttrMaxGridDimX, &limits->max_grid_x},
        {cudaDevAttrMaxSharedMemoryPerBlock, &limits->max_shared_per_block},
    };
    for (size_t i = 0; err == cudaSuccess && i < sizeof wanted / sizeof wanted[0]; i++) {
        int v = 0;
        err = cudaDeviceGetAttribute(&v, wanted[i].attr, device);
        *wanted[i].value = v;
    }
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_INTERNAL, "%s: cannot read the CUDA device's limits: %s (%s)",
                             kernel, cudaGetErrorName(err), cudaGetErrorString(err));
    return TSR_OK;
}

/* After a launch: a bad configuration or a device already in error. The
 * kernel's own faults surface at the next synchronisation. */
static inline tsr_status tsr_cuda_launch_status(const char *kernel)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_INTERNAL, "%s: kernel launch failed: %s (%s)", kernel,
                             cudaGetErrorName(err), cudaGetErrorString(err));
    return TSR_OK;
}

/* Sizes of a call: an error naming the kernel when one is negative; TSR_OK
 * with *empty set when one is 0 (nothing to launch, as the CPU kernels do
 * nothing). */
static inline tsr_status tsr_cuda_sizes(const char *kernel, int64_t a, int64_t b, int *empty)
{
    *empty = a == 0 || b == 0;
    if (a < 0 || b < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: sizes %" PRId64 " and %" PRId64 " must not be negative", kernel,
                             a, b);
    return TSR_OK;
}

/* An error naming the kernel and the argument when a required device
 * pointer is NULL (a NULL dereference on the device would poison the
 * context for every later call). */
static inline tsr_status tsr_cuda_need(const void *ptr, const char *name, const char *kernel)
{
    if (ptr == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s: %s is NULL", kernel, name);
    return TSR_OK;
}

/* The first NULL of ptrs[0 .. count), named names[i], as tsr_cuda_need. */
static inline tsr_status tsr_cuda_need_all(const char *kernel, const void *const *ptrs,
                                           const char *const *names, int count)
{
    tsr_status st = TSR_OK;
    for (int i = 0; i < count && st == TSR_OK; i++)
        st = tsr_cuda_need(ptrs[i], names[i], kernel);
    return st;
}

/* tsr_cuda_geometry_rows for the current device; its limits are kept in
 * *limits where a later launch of the call needs them (NULL: not kept). */
static inline tsr_status tsr_cuda_device_rows(const char *kernel, int64_t rows, int64_t cols,
                                              int64_t reduce_bytes, tsr_cuda_limits *limits,
                                              tsr_cuda_launch *launch)
{
    tsr_cuda_limits local;
    tsr_cuda_limits *l = limits != NULL ? limits : &local;
    tsr_status st = tsr_cuda_limits_query(l, kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_geometry_rows(l, rows, cols, reduce_bytes, kernel, launch);
}

/* tsr_cuda_geometry_elements for the current device. */
static inline tsr_status tsr_cuda_device_elements(const char *kernel, int64_t n,
                                                  tsr_cuda_launch *launch)
{
    tsr_cuda_limits limits;
    tsr_status st = tsr_cuda_limits_query(&limits, kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_geometry_elements(&limits, n, kernel, launch);
}

/* The prologue of an element kernel over n: the size, then the pointers it
 * needs, then the geometry; *empty (and nothing else checked) when n == 0. */
static inline tsr_status tsr_cuda_elements_of(const char *kernel, int64_t n,
                                              const void *const *ptrs, const char *const *names,
                                              int count, tsr_cuda_launch *launch, int *empty)
{
    tsr_status st = tsr_cuda_sizes(kernel, n, 1, empty);
    if (st != TSR_OK || *empty)
        return st;
    st = tsr_cuda_need_all(kernel, ptrs, names, count);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_device_elements(kernel, n, launch);
}

/* The prologue of a row kernel over (rows, cols): the sizes, then the
 * geometry (the limits kept as in tsr_cuda_device_rows), then the pointers
 * it needs; *empty (and nothing else checked) when a size is 0. */
static inline tsr_status tsr_cuda_rows_of(const char *kernel, int64_t rows, int64_t cols,
                                          int64_t reduce_bytes, const void *const *ptrs,
                                          const char *const *names, int count,
                                          tsr_cuda_limits *limits, tsr_cuda_launch *launch,
                                          int *empty)
{
    tsr_status st = tsr_cuda_sizes(kernel, rows, cols, empty);
    if (st != TSR_OK || *empty)
        return st;
    st = tsr_cuda_device_rows(kernel, rows, cols, reduce_bytes, limits, launch);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_need_all(kernel, ptrs, names, count);
}

/* Launches fn over the geometry (its dynamic shared memory included) on
 * the stream, then reports the launch as tsr_cuda_launch_status. */
template <typename... Params, typename... Args>
static tsr_status tsr_cuda_run(const char *kernel, const tsr_cuda_launch *launch, void *stream,
                               void (*fn)(Params...), Args... args)
{
    fn<<<dim3((unsigned)launch->blocks), dim3((unsigned)launch->threads),
         (size_t)launch->shared_bytes, (cudaStream_t)stream>>>(args...);
    return tsr_cuda_launch_status(kernel);
}

__device__ __forceinline__ int64_t tsr_thread_index()
{
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t tsr_grid_threads()
{
    return (int64_t)gridDim.x * blockDim.x;
}

/* The dynamic shared memory of the launch, as an array of T. */
template <typename T> __device__ __forceinline__ T *tsr_shared()
{
    extern __shared__ __align__(16) unsigned char tsr_shared_bytes[];
    return reinterpret_cast<T *>(tsr_shared_bytes);
}

struct tsr_cuda_add {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const
    {
        return a + b;
    }
};

/* fmaxf drops a NaN in favour of the other operand, as the CPU's
 * "x > m ? x : m" does. */
struct tsr_cuda_max {
    __device__ __forceinline__ float operator()(float a, float b) const
    {
        return fmaxf(a, b);
    }
};

/* op over the warp by the xor butterfly; every lane ends with a result */
template <typename T, typename Op> __device__ __forceinline__ T tsr_warp_reduce(T v, Op op)
{
    for (int offset = TSR_CUDA_WARP / 2; offset > 0; offset /= 2)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

template <typename T> __device__ __forceinline__ T tsr_warp_sum(T v)
{
    return tsr_warp_reduce(v, tsr_cuda_add());
}

/* op over the block, returned to every thread. partial: blockDim.x / 32
 * values of shared memory; the leading barrier lets a loop call this again
 * on the same partials. Only lane 0's value of each warp is kept and every
 * thread combines those in warp order, so the result is fixed by the
 * inputs even where lanes could differ (the sign of a zero under max). */
template <typename T, typename Op> __device__ __forceinline__ T tsr_block_reduce(T v, T *partial,
                                                                                Op op)
{
    v = tsr_warp_reduce(v, op);
    const unsigned lane = threadIdx.x % TSR_CUDA_WARP, warp = threadIdx.x / TSR_CUDA_WARP;
    const unsigned warps = blockDim.x / TSR_CUDA_WARP;
    __syncthreads();
    if (lane == 0)
        partial[warp] = v;
    __syncthreads();
    T total = partial[0];
    for (unsigned w = 1; w < warps; w++)
        total = op(total, partial[w]);
    return total;
}

template <typename T> __device__ __forceinline__ T tsr_block_sum(T v, T *partial)
{
    return tsr_block_reduce(v, partial, tsr_cuda_add());
}

__device__ __forceinline__ float tsr_block_max(float v, float *partial)
{
    return tsr_block_reduce(v, partial, tsr_cuda_max());
}

#endif /* TSR_KERNELS_CUDA_ELEMENTWISE_COMMON_CUH */
