/*
 * convert_cuda.cu - fp32 <-> bf16 on the GPU (the bf16 compute copies of
 * weights and activations under --bf16), bitwise the CPU's conversions of
 * runtime/kernels/cpu/bf16.c: round to nearest, ties to even; a NaN stays
 * a NaN with its sign and the quiet bit set; denormals become a zero of
 * their sign (as AVX512-BF16 does, and unlike __float2bfloat16_rn, which
 * keeps bf16 denormals: hence the integer formulation here). Elements are
 * independent; grid-stride element kernels.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

/* tsr_bf16_of_float, statement for statement */
__device__ __forceinline__ uint16_t bf16_of_float(float f)
{
    uint32_t bits = __float_as_uint(f);
    uint32_t exponent = bits & 0x7f800000u, mantissa = bits & 0x007fffffu;
    if (exponent == 0x7f800000u && mantissa != 0)
        return (uint16_t)((bits >> 16) | 0x0040u);
    if (exponent == 0)
        return (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

__device__ __forceinline__ float float_of_bf16(uint16_t h)
{
    return __uint_as_float((uint32_t)h << 16);
}

__global__ void bf16_from_floats_kernel(uint16_t *dst, const float *src, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        dst[i] = bf16_of_float(src[i]);
}

__global__ void floats_from_bf16_kernel(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        dst[i] = float_of_bf16(src[i]);
}

__global__ void bf16_round_floats_kernel(float *dst, const float *src, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        dst[i] = float_of_bf16(bf16_of_float(src[i]));
}

} /* namespace */

static tsr_status convert_geometry(const char *kernel, int64_t n, const void *dst,
                                   const void *src, tsr_cuda_launch *launch, int *empty)
{
    tsr_status st = tsr_cuda_sizes(kernel, n, 1, empty);
    if (st != TSR_OK || *empty)
        return st;
    st = tsr_cuda_need(dst, "dst", kernel);
    if (st == TSR_OK)
        st = tsr_cuda_need(src, "src", kernel);
    tsr_cuda_limits limits;
    if (st == TSR_OK)
        st = tsr_cuda_limits_query(&limits, kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_geometry_elements(&limits, n, kernel, launch);
}

extern "C" tsr_status tsr_cuda_bf16_from_floats(uint16_t *dst, const float *src, int64_t n,
                                                void *stream)
{
    const char *kernel = "tsr_cuda_bf16_from_floats";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = convert_geometry(kernel, n, dst, src, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    bf16_from_floats_kernel<<<tsr_cuda_grid(&g), tsr_cuda_block(&g), 0, (cudaStream_t)stream>>>(
        dst, src, n);
    return tsr_cuda_launch_status(kernel);
}

extern "C" tsr_status tsr_cuda_floats_from_bf16(float *dst, const uint16_t *src, int64_t n,
                                                void *stream)
{
    const char *kernel = "tsr_cuda_floats_from_bf16";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = convert_geometry(kernel, n, dst, src, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    floats_from_bf16_kernel<<<tsr_cuda_grid(&g), tsr_cuda_block(&g), 0, (cudaStream_t)stream>>>(
        dst, src, n);
    return tsr_cuda_launch_status(kernel);
}

extern "C" tsr_status tsr_cuda_bf16_round_floats(float *dst, const float *src, int64_t n,
                                                 void *stream)
{
    const char *kernel = "tsr_cuda_bf16_round_floats";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = convert_geometry(kernel, n, dst, src, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    bf16_round_floats_kernel<<<tsr_cuda_grid(&g), tsr_cuda_block(&g), 0,
                               (cudaStream_t)stream>>>(dst, src, n);
    return tsr_cuda_launch_status(kernel);
}
