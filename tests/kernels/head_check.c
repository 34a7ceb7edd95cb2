/*
 * head_check.c - the shared shapes, inputs and CPU reference of the fused
 * LM head's tests (head_check.h).
 */
#include "head_check.h"

#include <math.h>
#include <stdlib.h>

#include "kernel_check.h"
#include "tessera/kernels.h"

const hc_case hc_cases[HC_CASES] = {
    {1, 33, 1000, 0, 1000, 4096},
    {300, 64, 1000, 0, 990, 64},
    {77, 768, 513, 500, 1000, 16},
};

void hc_reference(const hc_case *c, const float *x, const float *w, const int32_t *targets,
                  const float *row_weight, hc_ref *ref)
{
    int64_t n = c->n, v = c->v_local;
    float *logits = kc_alloc(n * v), *row_max = kc_alloc(n), *sumexp = kc_alloc(n);
    float *target = kc_alloc(n);
    tsr_linear_forward(logits, x, w, NULL, n, c->hidden, v);
    int64_t first_pad = c->vocab - c->vocab_start;
    first_pad = first_pad < 0 ? 0 : first_pad > v ? v : first_pad;
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = first_pad; j < v; j++)
            logits[r * v + j] = -INFINITY;
    tsr_ce_row_max(row_max, logits, n, v);
    tsr_ce_sumexp_target(sumexp, target, logits, row_max, targets, n, v, c->vocab_start);
    tsr_ce_loss(ref->loss, sumexp, row_max, target, n);
    for (int64_t r = 0; r < n; r++)
        ref->correct[r] = target[r] >= row_max[r] ? 1.0f : 0.0f;
    tsr_ce_logits_to_grad(logits, row_max, sumexp, targets, row_weight, n, v, c->vocab_start);
    tsr_linear_backward(ref->dx, ref->dweight, NULL, logits, x, w, n, c->hidden, v);
    free(logits);
    free(row_max);
    free(sumexp);
    free(target);
}

float hc_rms(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return (float)sqrt(s / (double)n);
}

void hc_set_targets(const hc_case *c, const float *x, const float *w, int32_t *targets,
                    float *row_weight)
{
    int64_t n = c->n, v = c->v_local, real = c->vocab - c->vocab_start;
    real = real > v ? v : real;
    float *logits = kc_alloc(n * v);
    tsr_linear_forward(logits, x, w, NULL, n, c->hidden, v);
    for (int64_t r = 0; r < n; r++) {
        targets[r] = (int32_t)((r * 7919 + 13) % c->vocab);
        if (r % 3 == 0 && real > 0) {
            int64_t best = 0;
            for (int64_t j = 1; j < real; j++)
                best = logits[r * v + j] > logits[r * v + best] ? j : best;
            targets[r] = (int32_t)(c->vocab_start + best);
        }
        row_weight[r] = r % 5 == 3 ? 0.0f : 1.0f / (float)n;
    }
    free(logits);
}

