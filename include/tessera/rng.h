/*
 * rng.h - counter-based random numbers (Philox-4x32-10).
 *
 * A random number is a pure function of (key, counter): no state advances,
 * so every rank computes exactly the value the single-rank run would for
 * the same global element, whatever the layout. Keys are derived from the
 * seed and a purpose ("weights of layers.3.mlp.fc1", "dropout of layer 3 at
 * iteration 17") with tsr_rng_key(); counters are global element indices.
 */
#ifndef TESSERA_RNG_H
#define TESSERA_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Four 32-bit random words for (key, counter). */
void tsr_rng_philox(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]);

/* A 64-bit key from a seed and a name (FNV-1a of the name mixed with the
 * seed), e.g. tsr_rng_key(seed, "layers.0.attention.qkv.weight"). */
uint64_t tsr_rng_key(uint64_t seed, const char *name);

/* Mixes further integers (layer, iteration, microbatch) into a key. */
uint64_t tsr_rng_key_mix(uint64_t key, uint64_t value);

/* Uniform in [0, 1) with 24 random bits, for element `index`. */
float tsr_rng_uniform(uint64_t key, uint64_t index);

/* Standard normal for element `index` (Box-Muller on one Philox draw). */
float tsr_rng_normal(uint64_t key, uint64_t index);

/* Fills out[i] = mean + std * normal(key, first_index + i). */
void tsr_rng_fill_normal(float *out, int64_t n, uint64_t key, uint64_t first_index, float mean,
                         float std);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_RNG_H */
