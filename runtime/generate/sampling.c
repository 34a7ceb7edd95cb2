/*
 * sampling.c - the next token from logits (sampling.h). The candidates are
 * sorted once by probability (ties by id, so the order is total and the
 * draw reproducible), cut by top-k and top-p, and one uniform draw walks
 * their cumulative mass.
 */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>

#include "tessera/rng.h"

static const float *sort_probs; /* qsort has no context argument */

static int by_probability(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (sort_probs[i] != sort_probs[j])
        return sort_probs[i] > sort_probs[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int32_t argmax(const float *logits, int64_t v)
{
    int64_t best = 0;
    for (int64_t i = 1; i < v; i++)
        if (logits[i] > logits[best])
            best = i;
    return (int32_t)best;
}

int32_t tsr_sample_token(const float *logits, int64_t v, const tsr_sampling *s, int64_t sample,
                         int64_t position, float *probs, int32_t *order)
{
    if (s->greedy || s->top_k == 1 || !(s->temperature > 0.0))
        return argmax(logits, v);
    float max = logits[argmax(logits, v)];
    if (!isfinite(max)) /* +inf wins outright; all -inf or NaN: nothing to weigh */
        return argmax(logits, v);
    for (int64_t i = 0; i < v; i++) {
        probs[i] = isfinite(logits[i])
                       ? (float)exp(((double)logits[i] - (double)max) / s->temperature)
                       : 0.0f;
        order[i] = (int32_t)i;
    }
    sort_probs = probs;
    qsort(order, (size_t)v, sizeof *order, by_probability);
    int64_t keep = s->top_k > 0 && s->top_k < v ? s->top_k : v;
    double mass = 0.0;
    for (int64_t i = 0; i < keep; i++)
        mass += probs[order[i]];
    if (s->top_p < 1.0) {
        double cum = 0.0;
        int64_t n = 0;
        while (n < keep && cum < s->top_p * mass)
            cum += probs[order[n++]];
        keep = n > 0 ? n : 1;
        mass = cum > 0.0 ? cum : probs[order[0]];
    }
    if (!(mass > 0.0))
        return order[0];
    uint64_t key = tsr_rng_key_mix(s->key, (uint64_t)sample);
    double u = (double)tsr_rng_uniform(key, (uint64_t)position) * mass, cum = 0.0;
    for (int64_t i = 0; i < keep; i++) {
        cum += probs[order[i]];
        if (u < cum)
            return order[i];
    }
    return order[keep - 1];
}
