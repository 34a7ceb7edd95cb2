/*
 * kernel_check.h - helpers shared by the kernel tests: deterministic random
 * tensors and the finite-difference gradient check.
 *
 * The gradient check differentiates the scalar L(x) = sum_k out_k * w_k
 * (w random, L summed in double) by central differences,
 * (L(x + eps e_i) - L(x - eps e_i)) / (2 eps), at sampled elements i of x,
 * and returns the relative L2 error of the analytic gradient (the
 * kernel's backward called with dout = w) against it over those samples.
 * In fp32 with eps ~1e-2 the tests accept a relative L2 error of 2e-3
 * (observed: below 2e-4).
 */
#ifndef TSR_TEST_KERNEL_CHECK_H
#define TSR_TEST_KERNEL_CHECK_H

#include <stdint.h>
#include <stdlib.h>

/* x[i] = mean + std * normal(seed, i) */
void kc_fill_normal(float *x, int64_t n, uint64_t seed, float mean, float std);

/* x[i] uniform in [lo, hi) */
void kc_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi);

/* calloc that fails the test binary loudly on exhaustion */
float *kc_alloc(int64_t n);

/* runs the forward of the kernel under test with its current inputs into
 * out (n_out floats) */
typedef void (*kc_forward_fn)(void *ctx, float *out);

/* Central-difference check of d L / d x for L = sum out * w.
 * x: the input being perturbed (restored afterwards); analytic: the
 * backward's gradient of L with respect to x; samples: how many elements
 * to check (all if >= nx). Returns the relative L2 error over the checked
 * elements; prints the worst element if it exceeds `report_above`. */
double kc_grad_check(void *ctx, kc_forward_fn forward, float *x, int64_t nx,
                     const float *analytic, const float *w, int64_t n_out, int64_t samples,
                     float eps, const char *what);

/* largest |a - b| / (|b| + floor) over n */
double kc_max_rel_diff(const float *a, const double *b, int64_t n, double floor);

#define KC_FD_TOL 2e-3

#endif /* TSR_TEST_KERNEL_CHECK_H */
