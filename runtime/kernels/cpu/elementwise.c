/*
 * elementwise.c - residual add, gradient accumulation, scaling, and the
 * sum of squares behind the global gradient norm.
 *
 * The sum of squares is split into a fixed number of chunks whatever the
 * thread count, each summed in double, then combined in chunk order: the
 * norm is bitwise the same for 1 or 16 threads. Called by the layers
 * (residual stream) and by the optimizer step (norm, clipping).
 */
#include "simd.h"
#include "tessera/kernels.h"

void tsr_add_forward(float *out, const float *a, const float *b, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void tsr_accumulate(float *y, const float *x, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

void tsr_scale(float *x, float s, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

#define SUMSQ_CHUNKS 64

double tsr_sum_squares(const float *x, int64_t n)
{
    double partial[SUMSQ_CHUNKS];
#pragma omp parallel for schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int c = 0; c < SUMSQ_CHUNKS; c++) {
        int64_t lo = n * c / SUMSQ_CHUNKS, hi = n * (c + 1) / SUMSQ_CHUNKS;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = lo; i < hi; i++)
            s += (double)x[i] * (double)x[i];
        partial[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < SUMSQ_CHUNKS; c++)
        total += partial[c];
    return total;
}
