/*
 * dropout.c - dropout whose mask is a pure function of the global element.
 *
 * Element (b, t, j) of a (B, T, C) activation is dropped when
 * tsr_rng_uniform(key, index) < p, index = ((sample_offset + b) * t_global
 * + t_offset + t) * C + c_offset + j (C: c_global when the columns are
 * split, as the input of a row-parallel linear is). Any layout (data, sequence or context parallel)
 * therefore draws the same mask for the same global element, and backward
 * recomputes the mask instead of storing it. Kept elements are scaled by
 * 1 / (1 - p). Called by the residual (hidden) dropout of each block; the
 * attention-probability dropout uses the same rule inside attention.c.
 */
#include "simd.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

/* acc: y += x * mask * scale, else y = x * mask * scale */
static void dropout_apply(float *y, const float *x, int64_t b, int64_t t, int64_t c,
                          const tsr_dropout *dp, int acc)
{
    if (dp == NULL || dp->p <= 0.0f) {
#pragma omp parallel for simd schedule(static) if (b * t * c >= TSR_PARALLEL_MIN)
        for (int64_t i = 0; i < b * t * c; i++)
            y[i] = acc ? y[i] + x[i] : x[i];
        return;
    }
    float p = dp->p, scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    int64_t width = dp->c_global > 0 ? dp->c_global : c;
#pragma omp parallel for schedule(static) if (b * t * c >= 1024)
    for (int64_t r = 0; r < b * t; r++) {
        int64_t s = r / t, pos = r % t;
        uint64_t base = (uint64_t)(((dp->sample_offset + s) * dp->t_global + dp->t_offset + pos) *
                                       width +
                                   dp->c_offset);
        const float *xr = x + r * c;
        float *yr = y + r * c;
        for (int64_t j = 0; j < c; j++) {
            float keep = tsr_rng_uniform(dp->key, base + (uint64_t)j) >= p ? scale : 0.0f;
            yr[j] = acc ? yr[j] + xr[j] * keep : xr[j] * keep;
        }
    }
}

void tsr_dropout_forward(float *out, const float *x, int64_t b, int64_t t, int64_t c,
                         const tsr_dropout *dropout)
{
    dropout_apply(out, x, b, t, c, dropout, 0);
}

void tsr_dropout_backward(float *dx, const float *dout, int64_t b, int64_t t, int64_t c,
                          const tsr_dropout *dropout)
{
    if (dx == NULL)
        return;
    dropout_apply(dx, dout, b, t, c, dropout, 1);
}
