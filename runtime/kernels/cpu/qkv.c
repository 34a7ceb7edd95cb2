/*
 * qkv.c - splits the fused QKV projection output into q, k and v, and
 * gathers their gradients back.
 *
 * Megatron's layout: per token, for each query group g, the group's R
 * query heads, then its key head, then its value head. A column-parallel
 * QKV linear split over groups therefore hands each rank whole groups.
 * Called by the attention block between the QKV linear and attention.
 */
#include "simd.h"
#include "tessera/kernels.h"

void tsr_qkv_split_forward(float *q, float *k, float *v, const float *qkv, int64_t n,
                           int64_t groups, int64_t heads_per_group, int64_t d)
{
    int64_t r = heads_per_group, row = groups * (r + 2) * d;
    size_t qbytes = (size_t)(r * d) * sizeof(float), hbytes = (size_t)d * sizeof(float);
#pragma omp parallel for schedule(static) if (n * row >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *src = qkv + i * row + g * (r + 2) * d;
            memcpy(q + (i * groups + g) * r * d, src, qbytes);
            memcpy(k + (i * groups + g) * d, src + r * d, hbytes);
            memcpy(v + (i * groups + g) * d, src + (r + 1) * d, hbytes);
        }
    }
}

static inline void add_into(float *y, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        y[j] += x[j];
}

void tsr_qkv_split_backward(float *dqkv, const float *dq, const float *dk, const float *dv,
                            int64_t n, int64_t groups, int64_t heads_per_group, int64_t d)
{
    if (dqkv == NULL)
        return;
    int64_t r = heads_per_group, row = groups * (r + 2) * d;
#pragma omp parallel for schedule(static) if (n * row >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        for (int64_t g = 0; g < groups; g++) {
            float *dst = dqkv + i * row + g * (r + 2) * d;
            if (dq != NULL)
                add_into(dst, dq + (i * groups + g) * r * d, r * d);
            if (dk != NULL)
                add_into(dst + r * d, dk + (i * groups + g) * d, d);
            if (dv != NULL)
                add_into(dst + (r + 1) * d, dv + (i * groups + g) * d, d);
        }
    }
}
