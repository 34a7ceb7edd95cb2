/*
 * rmsnorm.c - RMSNorm over the last dimension (LLaMA style: no mean, no
 * bias), forward and backward.
 *
 * out = x * rstd * weight with rstd = 1 / sqrt(mean(x^2) + eps); the mean
 * of squares is summed in double. The weight gradient is a sum over rows,
 * computed column block by column block, each block walking the rows in
 * order: bitwise the same for any thread count. Called by the transformer
 * blocks and the final norm when --normalization RMSNorm.
 */
#include <math.h>

#include "simd.h"
#include "tessera/kernels.h"

#define COL_BLOCK 64

void tsr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                         int64_t n, int64_t c, float eps)
{
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *x = inp + i * c;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < c; j++)
            ss += (double)x[j] * (double)x[j];
        float r = (float)(1.0 / sqrt(ss / (double)c + (double)eps));
        float *y = out + i * c;
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            y[j] = x[j] * r * weight[j];
        rstd[i] = r;
    }
}

void tsr_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int64_t n, int64_t c)
{
    if (dinp != NULL) {
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float *x = inp + i * c, *dy = dout + i * c;
            float r = rstd[i];
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t j = 0; j < c; j++)
                dot += dy[j] * weight[j] * x[j];
            /* d rstd / d x_j = -rstd^3 x_j / C */
            float k = dot * r * r / (float)c;
            float *dx = dinp + i * c;
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                dx[j] += (dy[j] * weight[j] - x[j] * k) * r;
        }
    }
    if (dweight == NULL)
        return;
    int64_t blocks = (c + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t c0 = blk * COL_BLOCK;
        int64_t w = c - c0 < COL_BLOCK ? c - c0 : COL_BLOCK;
        float dw[COL_BLOCK] = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *x = inp + i * c + c0, *dy = dout + i * c + c0;
            float r = rstd[i];
#pragma omp simd
            for (int64_t j = 0; j < w; j++)
                dw[j] += dy[j] * (x[j] * r);
        }
        for (int64_t j = 0; j < w; j++)
            dweight[c0 + j] += dw[j];
    }
}
