/*
 * elementwise_cuda.cu - residual add, gradient accumulation and scaling on
 * the GPU (one rounding per element: bitwise the CPU's), and the sum of
 * squares behind the global gradient norm.
 *
 * The sum of squares is a two-pass reduction in double with no atomics:
 * pass 1 gives each block a fixed contiguous chunk and writes one partial
 * per block into the caller's workspace, pass 2 is a single block adding
 * the partials in order into the output scalar, which stays on the device
 * (the caller reduces it across ranks before reading it). The chunking is
 * a function of n alone (tsr_cuda_sumsq_plan_make), so the bits are the
 * same run to run and whatever the SM count. Called by the GPU layers (residual
 * stream) and the optimizer step (norm, clipping).
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

__global__ void add_kernel(float *out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        out[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(float *y, const float *x, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        y[i] += x[i];
}

__global__ void scale_kernel(float *x, float s, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        x[i] *= s;
}

/* block b: elements [b * chunk, min(n, (b + 1) * chunk)) */
__global__ void sum_squares_partial_kernel(double *partials, const float *x, int64_t n,
                                           int64_t chunk)
{
    double *shared = tsr_shared<double>();
    int64_t lo = (int64_t)blockIdx.x * chunk;
    int64_t hi = n - lo < chunk ? n : lo + chunk;
    double s = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double v = (double)x[i];
        s += v * v;
    }
    s = tsr_block_sum(s, shared);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

__global__ void sum_squares_total_kernel(double *out, const double *partials, int64_t count)
{
    double *shared = tsr_shared<double>();
    double s = 0.0;
    for (int64_t p = threadIdx.x; p < count; p += blockDim.x)
        s += partials[p];
    s = tsr_block_sum(s, shared);
    if (threadIdx.x == 0)
        *out = s;
}

} /* namespace */

extern "C" tsr_status tsr_cuda_add_forward(float *out, const float *a, const float *b, int64_t n,
                                           void *stream)
{
    const char *kernel = "tsr_cuda_add_forward";
    const void *ptrs[] = {a, b};
    const char *names[] = {"a", "b"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_elements_of(kernel, n, ptrs, names, 2, &g, &empty);
    if (st == TSR_OK && !empty)
        st = tsr_cuda_need(out, "out", kernel);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, add_kernel, out, a, b, n);
}

extern "C" tsr_status tsr_cuda_accumulate(float *y, const float *x, int64_t n, void *stream)
{
    const char *kernel = "tsr_cuda_accumulate";
    const void *ptrs[] = {y, x};
    const char *names[] = {"y", "x"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_elements_of(kernel, n, ptrs, names, 2, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, accumulate_kernel, y, x, n);
}

extern "C" tsr_status tsr_cuda_scale(float *x, float s, int64_t n, void *stream)
{
    const char *kernel = "tsr_cuda_scale";
    const void *ptrs[] = {x};
    const char *names[] = {"x"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_elements_of(kernel, n, ptrs, names, 1, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, scale_kernel, x, s, n);
}

extern "C" tsr_status tsr_cuda_sum_squares(double *out, const float *x, int64_t n,
                                           void *workspace, size_t workspace_bytes,
                                           void *stream)
{
    const char *kernel = "tsr_cuda_sum_squares";
    int empty = 0;
    tsr_status st = tsr_cuda_sizes(kernel, n, 1, &empty);
    if (st == TSR_OK)
        st = tsr_cuda_need(out, "out", kernel);
    if (st != TSR_OK)
        return st;
    cudaStream_t s = (cudaStream_t)stream;
    if (empty) {
        cudaError_t err = cudaMemsetAsync(out, 0, sizeof(double), s);
        if (err != cudaSuccess)
            return tsr_error_set(TSR_ERR_INTERNAL, "%s: cannot zero the output: %s (%s)", kernel,
                                 cudaGetErrorName(err), cudaGetErrorString(err));
        return TSR_OK;
    }
    tsr_cuda_sumsq_plan plan;
    st = tsr_cuda_sumsq_plan_make(n, kernel, &plan);
    if (st == TSR_OK)
        st = tsr_cuda_need(x, "x", kernel);
    if (st == TSR_OK)
        st = tsr_cuda_need(workspace, "workspace", kernel);
    if (st != TSR_OK)
        return st;
    if (workspace_bytes < (size_t)plan.workspace_bytes)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: the workspace holds %zu bytes; %" PRId64
                             " floats need %" PRId64 " (tsr_cuda_sumsq_plan_make)",
                             kernel, workspace_bytes, n, plan.workspace_bytes);
    tsr_cuda_limits limits;
    st = tsr_cuda_limits_query(&limits, kernel);
    if (st == TSR_OK && (plan.threads > limits.max_threads_per_block ||
                         plan.partials > limits.max_grid_x ||
                         plan.shared_bytes > limits.max_shared_per_block))
        st = tsr_error_set(TSR_ERR_UNSUPPORTED,
                           "%s: the device cannot run %" PRId64 " blocks of %" PRId64
                           " threads with %" PRId64 " bytes of shared memory",
                           kernel, plan.partials, plan.threads, plan.shared_bytes);
    if (st != TSR_OK)
        return st;
    double *partials = (double *)workspace;
    sum_squares_partial_kernel<<<dim3((unsigned)plan.partials), dim3((unsigned)plan.threads),
                                 (size_t)plan.shared_bytes, s>>>(partials, x, n, plan.chunk);
    st = tsr_cuda_launch_status(kernel);
    if (st != TSR_OK)
        return st;
    /* pass 2 is one block by construction of the plan */
    sum_squares_total_kernel<<<dim3(1), dim3((unsigned)plan.threads), (size_t)plan.shared_bytes,
                               s>>>(out, partials, plan.partials);
    return tsr_cuda_launch_status(kernel);
}
