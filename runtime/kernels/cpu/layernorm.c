/*
 * layernorm.c - LayerNorm over the last dimension, forward and backward.
 *
 * Row statistics are computed in double (two passes), so a row's mean and
 * rstd do not depend on the order of its C terms beyond double rounding.
 * The weight and bias gradients are sums over rows: they are computed in a
 * second pass in which each block of columns belongs to one loop iteration
 * walking the rows in order, so they are bitwise the same for any thread
 * count, without scratch memory. Called by the transformer blocks and the
 * final norm when --normalization LayerNorm.
 */
#include <math.h>

#include "simd.h"
#include "tessera/kernels.h"

#define COL_BLOCK 64

void tsr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int64_t n, int64_t c,
                           float eps)
{
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *x = inp + i * c;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++)
            s += x[j];
        double mu = s / (double)c;
        double v = 0.0;
#pragma omp simd reduction(+ : v)
        for (int64_t j = 0; j < c; j++) {
            double d = (double)x[j] - mu;
            v += d * d;
        }
        float m = (float)mu;
        float r = (float)(1.0 / sqrt(v / (double)c + (double)eps));
        float *y = out + i * c;
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            y[j] = (x[j] - m) * r * weight[j] + bias[j];
        mean[i] = m;
        rstd[i] = r;
    }
}

void tsr_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int64_t n, int64_t c)
{
    if (dinp != NULL) {
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float *x = inp + i * c, *dy = dout + i * c;
            float m = mean[i], r = rstd[i];
            float sum_dn = 0.0f, sum_dn_norm = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_norm)
            for (int64_t j = 0; j < c; j++) {
                float dn = dy[j] * weight[j];
                sum_dn += dn;
                sum_dn_norm += dn * (x[j] - m) * r;
            }
            float mean_dn = sum_dn / (float)c, mean_dn_norm = sum_dn_norm / (float)c;
            float *dx = dinp + i * c;
#pragma omp simd
            for (int64_t j = 0; j < c; j++) {
                float norm = (x[j] - m) * r;
                dx[j] += (dy[j] * weight[j] - mean_dn - norm * mean_dn_norm) * r;
            }
        }
    }
    if (dweight == NULL && dbias == NULL)
        return;
    int64_t blocks = (c + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t c0 = blk * COL_BLOCK;
        int64_t w = c - c0 < COL_BLOCK ? c - c0 : COL_BLOCK;
        float dw[COL_BLOCK] = {0}, db[COL_BLOCK] = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *x = inp + i * c + c0, *dy = dout + i * c + c0;
            float m = mean[i], r = rstd[i];
#pragma omp simd
            for (int64_t j = 0; j < w; j++) {
                dw[j] += dy[j] * ((x[j] - m) * r);
                db[j] += dy[j];
            }
        }
        for (int64_t j = 0; j < w; j++) {
            if (dweight != NULL)
                dweight[c0 + j] += dw[j];
            if (dbias != NULL)
                dbias[c0 + j] += db[j];
        }
    }
}
