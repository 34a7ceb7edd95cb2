/*
 * simd.h - the small vector vocabulary the CPU kernels share (internal).
 *
 * tsr_vf is TSR_VL floats as a GCC vector extension, one register of the
 * widest vector unit the build targets (-march=native in Release): 16
 * lanes with AVX-512, 8 with AVX/AVX2, 4 otherwise (SSE, the Debug/ASan
 * build). The width follows the target because GCC lowers a vector wider
 * than the registers through the stack: 64-byte vectors on AVX2 ran the
 * attention kernels several times slower. Loops step by TSR_VL over sizes
 * padded to 16, a multiple of every width; sums over lanes therefore
 * round in an order that depends on the width (deterministic for one
 * build). Loads and stores go through tsr_vfu, which has the alignment
 * of a float and may alias floats, so any float pointer can be used.
 *
 * tsr_expf_v / tsr_expf are one exp formula, on TSR_VL lanes and on one
 * float, written so that it vectorises (glibc's expf does not): relative
 * error <= 2 ulp for x in [-86, 88.7]; 0 below -87.3 and for -inf, +inf
 * above 88.72, NaN for NaN.
 *
 * Included only by the files of runtime/kernels/cpu; every function is
 * static inline.
 */
#ifndef TSR_KERNELS_CPU_SIMD_H
#define TSR_KERNELS_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#define TSR_VL 16
#elif defined(__AVX__)
#define TSR_VL 8
#else
#define TSR_VL 4
#endif

typedef float tsr_vf __attribute__((vector_size(TSR_VL * 4)));
typedef float tsr_vfu __attribute__((vector_size(TSR_VL * 4), aligned(4), may_alias));
typedef int32_t tsr_vi __attribute__((vector_size(TSR_VL * 4)));

/* Loops over fewer elements than this run on the calling thread alone:
 * below it the cost of waking the OpenMP team exceeds the work. */
#define TSR_PARALLEL_MIN 32768

#define TSR_VF_LOAD(p) (*(const tsr_vfu *)(const void *)(p))
#define TSR_VF_STORE(p, x) (*(tsr_vfu *)(void *)(p) = (x))

/* Cephes-style expf: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2]. The
 * scale is applied as 2^(n-1) * 2 so that n = 128 still yields a finite
 * result up to FLT_MAX. Written branch-free (selects only). */
#define TSR_EXP_HI 88.72283935546875f
#define TSR_EXP_LO (-87.33654022216797f)

static inline float tsr_expf(float x)
{
    float xc = x > TSR_EXP_HI ? TSR_EXP_HI : x;
    xc = xc < TSR_EXP_LO ? TSR_EXP_LO : xc;
    xc = xc != xc ? 0.0f : xc; /* NaN is restored at the end */
    /* round to nearest by the 1.5 * 2^23 trick (|xc * log2 e| < 2^22) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 126) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale * 2.0f;
    y = x < TSR_EXP_LO ? 0.0f : y;
    y = x > TSR_EXP_HI ? __builtin_inff() : y;
    y = x != x ? x : y;
    return y;
}

/* Lane-wise a where the mask lane is all ones (a comparison result), else b.
 * (The ?: operator on vectors is C++-only in GCC.) */
#define TSR_VF_SELECT(mask, a, b) \
    ((tsr_vf)(((tsr_vi)(a) & (mask)) | ((tsr_vi)(b) & ~(mask))))

/* The same computation on TSR_VL lanes. */
static inline tsr_vf tsr_expf_v(tsr_vf x)
{
    const tsr_vf zero = {0};
    tsr_vf vhi = zero + TSR_EXP_HI, vlo = zero + TSR_EXP_LO;
    tsr_vf xc = TSR_VF_SELECT(x > vhi, vhi, x);
    xc = TSR_VF_SELECT(xc < vlo, vlo, xc);
    xc = TSR_VF_SELECT(xc != xc, zero, xc);
    tsr_vf n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    tsr_vf r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    tsr_vf p = zero + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    tsr_vi bits = (__builtin_convertvector(n, tsr_vi) + 126) << 23;
    tsr_vf y = p * (tsr_vf)bits * 2.0f;
    y = TSR_VF_SELECT(x < vlo, zero, y);
    y = TSR_VF_SELECT(x > vhi, zero + __builtin_inff(), y);
    y = TSR_VF_SELECT(x != x, x, y);
    return y;
}

/* Sum of the lanes in a fixed order. */
static inline float tsr_vf_sum(tsr_vf x)
{
    float s = 0.0f;
    for (int i = 0; i < TSR_VL; i++)
        s += x[i];
    return s;
}

static inline float tsr_vf_max(tsr_vf x)
{
    float m = x[0];
    for (int i = 1; i < TSR_VL; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* 0, 1, ..., TSR_VL - 1 (folded to a constant). */
static inline tsr_vf tsr_vf_iota(void)
{
    tsr_vf v;
    for (int i = 0; i < TSR_VL; i++)
        v[i] = (float)i;
    return v;
}

/* Lane-wise maximum (NaN in b is dropped, as in the scalar max loops). */
#define TSR_VF_MAX(a, b) TSR_VF_SELECT((b) > (a), b, a)

#endif /* TSR_KERNELS_CPU_SIMD_H */
