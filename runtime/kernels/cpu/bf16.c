/*
 * bf16.c - fp32 <-> bf16 conversions of whole arrays (the operands of the
 * bf16 matrix products, the weights' compute copies, the activations a
 * micro batch holds for its backward).
 *
 * The vector path is AVX512-BF16's vcvtneps2bf16, chosen at run time so
 * that one binary serves CPUs with and without it. The scalar path
 * computes the same bits: round to nearest, ties to even; NaN quieted
 * with its sign; denormals flushed to a signed zero, as the instruction
 * does. Which path ran therefore never changes a result.
 */
#include <immintrin.h>
#include <stdbool.h>

#include "simd.h"
#include "tessera/kernels.h"

#define CONVERT_BLOCK 4096

uint16_t tsr_bf16_of_float(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint32_t exponent = bits & 0x7f800000u, mantissa = bits & 0x007fffffu;
    if (exponent == 0x7f800000u && mantissa != 0)
        return (uint16_t)((bits >> 16) | 0x0040u);
    if (exponent == 0)
        return (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

float tsr_float_of_bf16(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void to_bf16_scalar(uint16_t *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = tsr_bf16_of_float(src[i]);
}

__attribute__((target("avx512f,avx512bf16"))) static void to_bf16_avx512(uint16_t *dst,
                                                                         const float *src,
                                                                         int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    to_bf16_scalar(dst + i, src + i, n - i);
}

bool tsr_bf16_has_vector_convert(void)
{
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
    return known == 1;
}

void tsr_bf16_from_floats(uint16_t *dst, const float *src, int64_t n)
{
    if (n <= 0)
        return;
    bool vector = tsr_bf16_has_vector_convert();
    int64_t blocks = (n + CONVERT_BLOCK - 1) / CONVERT_BLOCK;
#pragma omp parallel for schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t lo = b * CONVERT_BLOCK, len = n - lo < CONVERT_BLOCK ? n - lo : CONVERT_BLOCK;
        if (vector)
            to_bf16_avx512(dst + lo, src + lo, len);
        else
            to_bf16_scalar(dst + lo, src + lo, len);
    }
}

void tsr_floats_from_bf16(float *dst, const uint16_t *src, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        memcpy(dst + i, &bits, sizeof bits);
    }
}

void tsr_bf16_round_floats(float *dst, const float *src, int64_t n)
{
    if (n <= 0)
        return;
    int64_t blocks = (n + CONVERT_BLOCK - 1) / CONVERT_BLOCK;
#pragma omp parallel for schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t lo = b * CONVERT_BLOCK, len = n - lo < CONVERT_BLOCK ? n - lo : CONVERT_BLOCK;
        uint16_t half[CONVERT_BLOCK];
        tsr_bf16_from_floats(half, src + lo, len);
        tsr_floats_from_bf16(dst + lo, half, len);
    }
}
