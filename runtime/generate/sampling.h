/*
 * sampling.h - choosing the next token from logits: greedy, temperature,
 * top-k and top-p (nucleus), from the counter-based RNG, so that every
 * tensor-parallel rank, holding the same gathered logits, draws the same
 * token without talking, and a run is repeated exactly by its seed.
 */
#ifndef TSR_RUNTIME_GENERATE_SAMPLING_H
#define TSR_RUNTIME_GENERATE_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tsr_sampling {
    bool greedy;        /* the most likely token (lowest id among ties) */
    double temperature; /* > 0: logits / temperature before the softmax */
    int64_t top_k;      /* > 0: only the k most likely tokens */
    double top_p;       /* < 1: only the fewest most likely tokens whose probability
                         * (after top-k, renormalised) reaches top_p */
    uint64_t key;       /* tsr_rng_key(seed, "generate") */
} tsr_sampling;

/* The token drawn for logits (v) of sequence `sample` at `position`: a
 * pure function of (logits, settings, sample, position). probs and order
 * hold v entries each (scratch). Logits of -inf are never drawn. */
int32_t tsr_sample_token(const float *logits, int64_t v, const tsr_sampling *s, int64_t sample,
                         int64_t position, float *probs, int32_t *order);

#endif /* TSR_RUNTIME_GENERATE_SAMPLING_H */
