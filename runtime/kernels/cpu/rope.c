/*
 * rope.c - rotary position embedding, rotate-half convention (LLaMA,
 * Megatron, Hugging Face): for i < D/2 the pair (x_i, x_{i+D/2}) is
 * rotated by the angle pos * base^(-2i/D), pos = t_offset + t.
 *
 * Angles are computed in fp32 the way PyTorch reference code builds its
 * cos/sin tables: inv_freq = 1 / base^(2i/D) rounded to float, angle =
 * float(pos) * inv_freq rounded to float, then cosf/sinf. The tables of
 * one position are computed once per row for all heads, in chunks kept on
 * the stack. Called by the attention block on q and k before attention.
 */
#include <math.h>

#include "simd.h"
#include "tessera/kernels.h"

#define ANGLE_CHUNK 64

/* cos/sin of the angles of pairs [i0, i0 + m) at position pos */
static void rope_angles(float *cs, float *sn, int64_t pos, int64_t i0, int64_t m, int64_t d,
                        float base)
{
    for (int64_t i = 0; i < m; i++) {
        float inv_freq = 1.0f / powf(base, (float)(2 * (i0 + i)) / (float)d);
        float angle = (float)pos * inv_freq;
        cs[i] = cosf(angle);
        sn[i] = sinf(angle);
    }
}

/* sign = +1 rotates by +angle (forward), -1 by -angle (backward); acc adds
 * into y instead of overwriting it. */
static void rope_apply(float *y, const float *x, const int32_t *doc_start, int64_t b, int64_t t,
                       int64_t h, int64_t d, int64_t t_offset, float base, float sign, int acc)
{
    int64_t half = d / 2;
#pragma omp parallel for schedule(static) if (b * t * h * d >= TSR_PARALLEL_MIN)
    for (int64_t r = 0; r < b * t; r++) {
        int64_t pos = t_offset + r % t - (doc_start != NULL ? doc_start[r] : 0);
        float cs[ANGLE_CHUNK], sn[ANGLE_CHUNK];
        for (int64_t i0 = 0; i0 < half; i0 += ANGLE_CHUNK) {
            int64_t m = half - i0 < ANGLE_CHUNK ? half - i0 : ANGLE_CHUNK;
            rope_angles(cs, sn, pos, i0, m, d, base);
            for (int64_t j = 0; j < h; j++) {
                const float *x1 = x + (r * h + j) * d + i0, *x2 = x1 + half;
                float *y1 = y + (r * h + j) * d + i0, *y2 = y1 + half;
#pragma omp simd
                for (int64_t i = 0; i < m; i++) {
                    float a = x1[i], bb = x2[i], s = sign * sn[i];
                    float o1 = a * cs[i] - bb * s, o2 = bb * cs[i] + a * s;
                    if (acc) {
                        y1[i] += o1;
                        y2[i] += o2;
                    } else {
                        y1[i] = o1;
                        y2[i] = o2;
                    }
                }
            }
        }
    }
}

void tsr_rope_forward(float *out, const float *x, int64_t b, int64_t t, int64_t h, int64_t d,
                      int64_t t_offset, float base)
{
    rope_apply(out, x, NULL, b, t, h, d, t_offset, base, 1.0f, 0);
}

void tsr_rope_backward(float *dx, const float *dout, int64_t b, int64_t t, int64_t h, int64_t d,
                       int64_t t_offset, float base)
{
    if (dx == NULL)
        return;
    rope_apply(dx, dout, NULL, b, t, h, d, t_offset, base, -1.0f, 1);
}

void tsr_rope_forward_docs(float *out, const float *x, const int32_t *doc_start, int64_t b,
                           int64_t t, int64_t h, int64_t d, int64_t t_offset, float base)
{
    rope_apply(out, x, doc_start, b, t, h, d, t_offset, base, 1.0f, 0);
}

void tsr_rope_backward_docs(float *dx, const float *dout, const int32_t *doc_start, int64_t b,
                            int64_t t, int64_t h, int64_t d, int64_t t_offset, float base)
{
    if (dx == NULL)
        return;
    rope_apply(dx, dout, doc_start, b, t, h, d, t_offset, base, -1.0f, 1);
}
