/*
 * linear.c - y = x W^T + b and its backward, through cblas_sgemm.
 *
 * Weights are (out_features, in_features) row-major, as in PyTorch, so the
 * forward is one sgemm with W transposed. The bias is written into out
 * first and sgemm adds the product (beta = 1), as torch.addmm does. The
 * bias gradient is a column sum over rows: each column block belongs to
 * one loop iteration that walks the rows in order, so the sum does not
 * depend on the thread count. Called by every linear layer.
 *
 * While --bf16's or --fp16's context is active (kernels/matmul16.h) the
 * products, and only they, are 16-bit with fp32 accumulation; the bias
 * and its gradient stay fp32.
 */
#include <cblas.h>

#include "kernels/matmul16.h"
#include "simd.h"
#include "tessera/kernels.h"

#define COLSUM_BLOCK 64

void tsr_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int64_t n, int64_t in_features, int64_t out_features)
{
    if (n <= 0 || out_features <= 0)
        return;
    float beta = 0.0f;
    if (bias != NULL) {
#pragma omp parallel for schedule(static) if (n * out_features >= TSR_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            memcpy(out + i * out_features, bias, (size_t)out_features * sizeof(float));
        beta = 1.0f;
    }
    tsr_matmul16 *m16 = tsr_matmul16_active();
    if (m16 != NULL) {
        tsr_matmul16_linear_forward(m16, out, inp, weight, n, in_features, out_features,
                                       beta != 0.0f);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)out_features,
                (blasint)in_features, 1.0f, inp, (blasint)in_features, weight,
                (blasint)in_features, beta, out, (blasint)out_features);
}

void tsr_linear_forward_add(float *out, const float *inp, const float *weight, int64_t n,
                            int64_t in_features, int64_t out_features)
{
    if (n <= 0 || out_features <= 0 || in_features <= 0)
        return;
    tsr_matmul16 *m16 = tsr_matmul16_active();
    if (m16 != NULL) {
        tsr_matmul16_linear_forward(m16, out, inp, weight, n, in_features, out_features,
                                       true);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)out_features,
                (blasint)in_features, 1.0f, inp, (blasint)in_features, weight,
                (blasint)in_features, 1.0f, out, (blasint)out_features);
}

/* dbias[j] += sum_i dout[i, j] */
static void column_sum_accumulate(float *dbias, const float *dout, int64_t n, int64_t oc)
{
    int64_t blocks = (oc + COLSUM_BLOCK - 1) / COLSUM_BLOCK;
#pragma omp parallel for schedule(static) if (n * oc >= TSR_PARALLEL_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t c0 = blk * COLSUM_BLOCK;
        int64_t w = oc - c0 < COLSUM_BLOCK ? oc - c0 : COLSUM_BLOCK;
        float acc[COLSUM_BLOCK] = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *row = dout + i * oc + c0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++)
                acc[j] += row[j];
        }
        for (int64_t j = 0; j < w; j++)
            dbias[c0 + j] += acc[j];
    }
}

void tsr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int64_t n, int64_t in_features,
                         int64_t out_features)
{
    if (n <= 0 || out_features <= 0 || in_features <= 0)
        return;
    tsr_matmul16 *m16 = tsr_matmul16_active();
    if (m16 != NULL) {
        tsr_matmul16_linear_backward(m16, dinp, dweight, dout, inp, weight, n, in_features,
                                        out_features);
        if (dbias != NULL)
            column_sum_accumulate(dbias, dout, n, out_features);
        return;
    }
    blasint bn = (blasint)n, ic = (blasint)in_features, oc = (blasint)out_features;
    if (dinp != NULL)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bn, ic, oc, 1.0f, dout, oc,
                    weight, ic, 1.0f, dinp, ic);
    if (dweight != NULL)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, oc, ic, bn, 1.0f, dout, oc, inp, ic,
                    1.0f, dweight, ic);
    if (dbias != NULL)
        column_sum_accumulate(dbias, dout, n, out_features);
}
