/*
 * cross_entropy.c - softmax cross-entropy over a logits buffer that may be
 * one vocabulary slice of a tensor-parallel LM head, in four steps so that
 * the caller can all-reduce (max, then sumexp and target logit) between
 * them. The last step overwrites the logits with their gradient, so the
 * full-vocabulary probabilities never exist beside the logits.
 *
 * Row sums use TSR_VL float lanes accumulated in double and combined in a
 * fixed order: deterministic, and vectorised with the shared exp (simd.h).
 * Rows are independent, so every step is bitwise the same for any thread
 * count. Called by the fused LM-head + loss layer.
 */
#include <math.h>

#include "simd.h"
#include "tessera/kernels.h"

void tsr_ce_row_max(float *row_max, const float *logits, int64_t n, int64_t v_local)
{
#pragma omp parallel for schedule(static) if (n * v_local >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *x = logits + i * v_local;
        float m = -INFINITY;
        int64_t nv = v_local / TSR_VL, j = 0;
        if (nv > 0) {
            tsr_vf mv = TSR_VF_LOAD(x);
            for (int64_t b = 1; b < nv; b++) {
                tsr_vf y = TSR_VF_LOAD(x + b * TSR_VL);
                mv = TSR_VF_MAX(mv, y);
            }
            m = tsr_vf_max(mv);
            j = nv * TSR_VL;
        }
        for (; j < v_local; j++)
            m = x[j] > m ? x[j] : m;
        row_max[i] = m;
    }
}

void tsr_ce_sumexp_target(float *sumexp, float *target_logit, const float *logits,
                          const float *row_max, const int32_t *targets, int64_t n,
                          int64_t v_local, int64_t vocab_start)
{
#pragma omp parallel for schedule(static) if (n * v_local >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *x = logits + i * v_local;
        float m = row_max[i];
        int64_t nv = v_local / TSR_VL;
        double lanes[TSR_VL] = {0};
        for (int64_t b = 0; b < nv; b++) {
            tsr_vf e = tsr_expf_v(TSR_VF_LOAD(x + b * TSR_VL) - m);
            for (int l = 0; l < TSR_VL; l++)
                lanes[l] += (double)e[l];
        }
        double s = 0.0;
        for (int l = 0; l < TSR_VL; l++)
            s += lanes[l];
        for (int64_t j = nv * TSR_VL; j < v_local; j++)
            s += (double)tsr_expf(x[j] - m);
        sumexp[i] = (float)s;
        int64_t tj = (int64_t)targets[i] - vocab_start;
        target_logit[i] = tj >= 0 && tj < v_local ? x[tj] : 0.0f;
    }
}

void tsr_ce_loss(float *loss, const float *sumexp, const float *row_max,
                 const float *target_logit, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        loss[i] = logf(sumexp[i]) + (row_max[i] - target_logit[i]); /* exact for close logits */
}

void tsr_ce_logits_to_grad(float *logits, const float *row_max, const float *sumexp,
                           const int32_t *targets, const float *dloss, int64_t n,
                           int64_t v_local, int64_t vocab_start)
{
#pragma omp parallel for schedule(static) if (n * v_local >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float *x = logits + i * v_local;
        float dl = dloss[i];
        if (dl == 0.0f) {
            memset(x, 0, (size_t)v_local * sizeof(float));
            continue;
        }
        float m = row_max[i], k = dl / sumexp[i];
        int64_t nv = v_local / TSR_VL;
        for (int64_t b = 0; b < nv; b++)
            TSR_VF_STORE(x + b * TSR_VL, tsr_expf_v(TSR_VF_LOAD(x + b * TSR_VL) - m) * k);
        for (int64_t j = nv * TSR_VL; j < v_local; j++)
            x[j] = tsr_expf(x[j] - m) * k;
        int64_t tj = (int64_t)targets[i] - vocab_start;
        if (tj >= 0 && tj < v_local)
            x[tj] -= dl;
    }
}
