/*
 * kernel_check.c - random tensors and the finite-difference gradient check
 * (see kernel_check.h).
 */
#include "kernel_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tessera/rng.h"

void kc_fill_normal(float *x, int64_t n, uint64_t seed, float mean, float std)
{
    tsr_rng_fill_normal(x, n, tsr_rng_key_mix(0x6b65726e656c73ull, seed), 0, mean, std);
}

void kc_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
    uint64_t key = tsr_rng_key_mix(0x756e69666f726dull, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * tsr_rng_uniform(key, (uint64_t)i);
}

float *kc_alloc(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (p == NULL) {
        fprintf(stderr, "kernel test: out of memory for %lld floats\n", (long long)n);
        abort();
    }
    return p;
}

static double weighted_sum(void *ctx, kc_forward_fn forward, float *out, const float *w,
                           int64_t n_out)
{
    forward(ctx, out);
    double s = 0.0;
    for (int64_t k = 0; k < n_out; k++)
        s += (double)out[k] * (double)w[k];
    return s;
}

double kc_grad_check(void *ctx, kc_forward_fn forward, float *x, int64_t nx,
                     const float *analytic, const float *w, int64_t n_out, int64_t samples,
                     float eps, const char *what)
{
    float *out = kc_alloc(n_out);
    int64_t count = samples < nx ? samples : nx;
    double num2 = 0.0, err2 = 0.0, worst = 0.0;
    int64_t worst_i = -1;
    double worst_num = 0.0;
    for (int64_t s = 0; s < count; s++) {
        /* spread the samples over the whole tensor, offset by a stride
         * coprime with most sizes so all positions get visited */
        int64_t i = count == nx ? s : (s * 7919 + 13) % nx;
        float saved = x[i];
        x[i] = saved + eps;
        double lp = weighted_sum(ctx, forward, out, w, n_out);
        x[i] = saved - eps;
        double lm = weighted_sum(ctx, forward, out, w, n_out);
        x[i] = saved;
        double num = (lp - lm) / (2.0 * (double)eps);
        double err = (double)analytic[i] - num;
        num2 += num * num;
        err2 += err * err;
        if (fabs(err) > worst) {
            worst = fabs(err);
            worst_i = i;
            worst_num = num;
        }
    }
    free(out);
    double rel = num2 > 0.0 ? sqrt(err2 / num2) : sqrt(err2);
    if (rel > KC_FD_TOL || getenv("KC_VERBOSE") != NULL)
        fprintf(stderr,
                "gradient check %s: rel L2 %.3g over %lld elements; worst at %lld: analytic "
                "%.6g numeric %.6g\n",
                what, rel, (long long)count, (long long)worst_i, (double)analytic[worst_i],
                worst_num);
    return rel;
}

double kc_max_rel_diff(const float *a, const double *b, int64_t n, double floor)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (fabs(b[i]) + floor);
        if (d > worst || d != d)
            worst = d != d ? INFINITY : d;
    }
    return worst;
}
