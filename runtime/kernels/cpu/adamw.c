/*
 * adamw.c - one AdamW step over a flat parameter shard, in the order of
 * operations of torch.optim.AdamW (single-tensor path):
 *
 *   param *= 1 - lr * weight_decay              (decoupled decay, old param)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 *
 * The scalar factors are computed in double and rounded to float once, as
 * PyTorch does with its Python-float hyperparameters. g = grad * grad_scale
 * (the clipping factor). Elements are independent: bitwise the same for
 * any thread count. Called by the optimizer on each rank's shard.
 */
#include <math.h>

#include "simd.h"
#include "tessera/kernels.h"

void tsr_adamw_update(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int64_t step,
                      float grad_scale)
{
    double t = (double)(step > 0 ? step : 1);
    float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    float b1 = beta1, one_minus_b1 = (float)(1.0 - (double)beta1);
    float b2 = beta2, one_minus_b2 = (float)(1.0 - (double)beta2);
    double bc1 = 1.0 - pow((double)beta1, t), bc2 = 1.0 - pow((double)beta2, t);
    float step_size = (float)((double)lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for simd schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] * grad_scale;
        float p = param[i] * decay;
        float mi = b1 * m[i] + one_minus_b1 * g;
        float vi = b2 * v[i] + one_minus_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}
