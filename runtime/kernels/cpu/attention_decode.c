/*
 * attention_decode.c - one new query per sample against the keys and
 * values of the positions before it, for generation with a key/value
 * cache (kernels.h). The scores of a (sample, head) are one row, so they
 * are computed whole, in fp32, with an exact max-shifted softmax;
 * each (sample, head) is one loop iteration, so the result does not
 * depend on the thread count.
 */
#include <math.h>

#include "simd.h"
#include "tessera/kernels.h"

void tsr_attention_decode(float *out, const float *q, const float *k_cache, const float *v_cache,
                          int64_t b, int64_t t, int64_t pos, int64_t hq, int64_t hkv, int64_t d,
                          const tsr_attn_mask *mask, float *scratch)
{
    float scale = 1.0f / sqrtf((float)d);
    int64_t group = hq / hkv;
#pragma omp parallel for schedule(static) if (b * hq * pos * d >= TSR_PARALLEL_MIN)
    for (int64_t bh = 0; bh < b * hq; bh++) {
        int64_t s = bh / hq, h = bh % hq, g = h / group;
        const float *qh = q + bh * d;
        float *scores = scratch + bh * t;
        float max = -INFINITY;
        for (int64_t j = 0; j <= pos; j++) {
            if (!tsr_attn_pattern_sees(mask, pos, j)) {
                scores[j] = -INFINITY;
                continue;
            }
            const float *kj = k_cache + ((s * t + j) * hkv + g) * d;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t e = 0; e < d; e++)
                dot += qh[e] * kj[e];
            scores[j] = dot * scale;
            if (scores[j] > max)
                max = scores[j];
        }
        float *oh = out + bh * d;
        for (int64_t e = 0; e < d; e++)
            oh[e] = 0.0f;
        if (max == -INFINITY)
            continue; /* sees no key: out = 0, as the training kernel */
        float sum = 0.0f;
        for (int64_t j = 0; j <= pos; j++) {
            float p = scores[j] == -INFINITY ? 0.0f : expf(scores[j] - max);
            scores[j] = p;
            sum += p;
        }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j <= pos; j++) {
            if (scores[j] == 0.0f)
                continue;
            const float *vj = v_cache + ((s * t + j) * hkv + g) * d;
            float p = scores[j] * inv;
#pragma omp simd
            for (int64_t e = 0; e < d; e++)
                oh[e] += p * vj[e];
        }
    }
}
