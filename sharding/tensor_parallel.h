/*
 * tensor_parallel.h - the communication of tensor and sequence parallelism,
 * as Megatron's conjugate operators place it:
 *
 *   f: identity forward, all-reduce backward   (input of a column-parallel layer)
 *   g: all-reduce forward, identity backward   (output of a row-parallel layer)
 *
 * and, under sequence parallelism, their sequence-split forms: all-gather
 * along the sequence before a column-parallel layer (reduce-scatter in
 * backward), reduce-scatter after a row-parallel layer (all-gather in
 * backward). Activations are (B, T, C) with B outermost, so a rank's
 * sequence chunk is B strided blocks; the gathers permute through a
 * scratch buffer of B*T*C floats.
 *
 * A NULL grid (or TP size 1) makes every call a no-op copy-free return, so
 * the model code reads the same for one rank and many.
 */
#ifndef TSR_SHARDING_TENSOR_PARALLEL_H
#define TSR_SHARDING_TENSOR_PARALLEL_H

#include <stdint.h>

#include "sharding/grid.h"

typedef struct tsr_tp {
    tsr_grid *grid; /* NULL: one rank */
    int size, rank;
    float *scratch; /* B*T*C floats, for the sequence permutations */
} tsr_tp;

/* x (n) summed over the TP group, in place. Each takes its caller's site
 * for the watchdog's ring (tessera/call_site.h). */
tsr_status tsr_tp_allreduce_sum(tsr_call_site site, const tsr_tp *tp, float *x, int64_t n);
tsr_status tsr_tp_allreduce_max(tsr_call_site site, const tsr_tp *tp, float *x, int64_t n);

/* local (B, T/tp, C) of every rank -> full (B, T, C) on every rank */
tsr_status tsr_tp_gather_sequence(tsr_call_site site, const tsr_tp *tp, float *full,
                                  const float *local, int64_t b, int64_t t_local, int64_t c);

/* full (B, T, C) partial sums -> this rank's (B, T/tp, C) chunk of the sum */
tsr_status tsr_tp_scatter_sequence(tsr_call_site site, const tsr_tp *tp, float *local,
                                   const float *full, int64_t b, int64_t t_local, int64_t c);

#endif /* TSR_SHARDING_TENSOR_PARALLEL_H */
