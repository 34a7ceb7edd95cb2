/*
 * rng.c - Philox-4x32-10 (Salmon et al., SC'11) and what is built on it.
 *
 * Box-Muller is computed in double precision from two 32-bit words so that
 * the same counter gives the same float on every machine and compiler.
 */
#include "tessera/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void tsr_rng_philox(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
    uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint64_t tsr_rng_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return tsr_rng_key_mix(h, seed);
}

uint64_t tsr_rng_key_mix(uint64_t key, uint64_t value)
{
    /* splitmix64 finaliser: every input bit affects every output bit */
    uint64_t z = key ^ (value + 0x9E3779B97F4A7C15ull + (key << 6) + (key >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float tsr_rng_uniform(uint64_t key, uint64_t index)
{
    uint32_t r[4];
    tsr_rng_philox(key, 0, index, r);
    return (float)(r[0] >> 8) * (1.0f / 16777216.0f);
}

float tsr_rng_normal(uint64_t key, uint64_t index)
{
    uint32_t r[4];
    tsr_rng_philox(key, 1, index, r);
    /* u1 in (0, 1], u2 in [0, 1), 53-bit resolution */
    double u1 = ((double)(((uint64_t)r[0] << 21) ^ (r[1] >> 11)) + 1.0) / 9007199254740992.0;
    double u2 = (double)(((uint64_t)r[2] << 21) ^ (r[3] >> 11)) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void tsr_rng_fill_normal(float *out, int64_t n, uint64_t key, uint64_t first_index, float mean,
                         float std)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = mean + std * tsr_rng_normal(key, first_index + (uint64_t)i);
}
