/*
 * fp16.c - fp32 <-> IEEE binary16 (the operands of --fp16's products,
 * the activations a micro batch holds for its backward).
 *
 * Round to nearest, ties to even; magnitudes from 65520 up become inf,
 * which is how an fp16 product overflows and what loss scaling detects;
 * subnormal halves are kept (down to 2^-24), smaller values become signed
 * zeros; NaN stays a quiet NaN. The vector path is AVX-512's vcvtps2ph,
 * chosen at run time; the scalar code computes the same bits.
 */
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

#include "simd.h"
#include "tessera/kernels.h"

#define CONVERT_BLOCK 4096

uint16_t tsr_fp16_of_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) /* NaN: quiet, the payload's top bits kept */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u) /* 65520 and up (and inf): inf */
        return (uint16_t)(sign | 0x7c00u);
    if (x < 0x38800000u) { /* below 2^-14: a multiple of 2^-24, rounded to even */
        float scaled = fabsf(f) * 16777216.0f; /* exact: a power of two */
        return (uint16_t)(sign | (uint16_t)lrintf(scaled));
    }
    uint32_t r = x - 0x38000000u; /* exponent bias 127 -> 15 */
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | r);
}

float tsr_float_of_fp16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: m x 2^-24 */
        float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    uint32_t bits = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112u) << 23) | (m << 13));
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void round_scalar(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = tsr_float_of_fp16(tsr_fp16_of_float(src[i]));
}

__attribute__((target("avx512f"))) static void round_avx512(float *dst, const float *src,
                                                            int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
    round_scalar(dst + i, src + i, n - i);
}

static bool has_avx512f(void)
{
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return known == 1;
}

static void to_fp16_scalar(uint16_t *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = tsr_fp16_of_float(src[i]);
}

static void of_fp16_scalar(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = tsr_float_of_fp16(src[i]);
}

__attribute__((target("avx512f"))) static void to_fp16_avx512(uint16_t *dst, const float *src,
                                                              int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    to_fp16_scalar(dst + i, src + i, n - i);
}

__attribute__((target("avx512f"))) static void of_fp16_avx512(float *dst, const uint16_t *src,
                                                              int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    of_fp16_scalar(dst + i, src + i, n - i);
}

/* What a conversion does to one block of len elements from lo. */
typedef enum conversion { ROUND, TO_HALVES, OF_HALVES } conversion;

static void convert_block(conversion c, bool vector, void *dst, const void *src, int64_t lo,
                          int64_t len)
{
    const float *from_floats = (const float *)src + lo;
    const uint16_t *from_halves = (const uint16_t *)src + lo;
    float *floats = (float *)dst + lo;
    uint16_t *halves = (uint16_t *)dst + lo;
    switch (c) {
    case ROUND:
        (vector ? round_avx512 : round_scalar)(floats, from_floats, len);
        break;
    case TO_HALVES:
        (vector ? to_fp16_avx512 : to_fp16_scalar)(halves, from_floats, len);
        break;
    case OF_HALVES:
        (vector ? of_fp16_avx512 : of_fp16_scalar)(floats, from_halves, len);
        break;
    }
}

static void convert(conversion c, void *dst, const void *src, int64_t n)
{
    if (n <= 0)
        return;
    bool vector = has_avx512f();
    int64_t blocks = (n + CONVERT_BLOCK - 1) / CONVERT_BLOCK;
#pragma omp parallel for schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t lo = b * CONVERT_BLOCK;
        convert_block(c, vector, dst, src, lo, n - lo < CONVERT_BLOCK ? n - lo : CONVERT_BLOCK);
    }
}

void tsr_fp16_round_floats(float *dst, const float *src, int64_t n)
{
    convert(ROUND, dst, src, n);
}

void tsr_fp16_from_floats(uint16_t *dst, const float *src, int64_t n)
{
    convert(TO_HALVES, dst, src, n);
}

void tsr_floats_from_fp16(float *dst, const uint16_t *src, int64_t n)
{
    convert(OF_HALVES, dst, src, n);
}
