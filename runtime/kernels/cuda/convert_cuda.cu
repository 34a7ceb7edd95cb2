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

/* the three conversions differ in their kernel only */
template <typename Dst, typename Src>
static tsr_status convert(const char *kernel, void (*fn)(Dst *, const Src *, int64_t), Dst *dst,
                          const Src *src, int64_t n, void *stream)
{
    const void *ptrs[] = {dst, src};
    const char *names[] = {"dst", "src"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_elements_of(kernel, n, ptrs, names, 2, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, fn, dst, src, n);
}

extern "C" tsr_status tsr_cuda_bf16_from_floats(uint16_t *dst, const float *src, int64_t n,
                                                void *stream)
{
    return convert("tsr_cuda_bf16_from_floats", bf16_from_floats_kernel, dst, src, n, stream);
}

extern "C" tsr_status tsr_cuda_floats_from_bf16(float *dst, const uint16_t *src, int64_t n,
                                                void *stream)
{
    return convert("tsr_cuda_floats_from_bf16", floats_from_bf16_kernel, dst, src, n, stream);
}

extern "C" tsr_status tsr_cuda_bf16_round_floats(float *dst, const float *src, int64_t n,
                                                 void *stream)
{
    return convert("tsr_cuda_bf16_round_floats", bf16_round_floats_kernel, dst, src, n, stream);
}
