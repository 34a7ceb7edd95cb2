/*
 * pipeline_layers.h - which decoder layers each pipeline stage holds.
 *
 * Megatron's split, as pure functions of the layer count L, the pipeline
 * size p and the model chunks per rank v:
 *   even (default)  rank r holds layers [r*L/p, (r+1)*L/p);
 *   uneven          --decoder-first-pipeline-num-layers F and/or
 *                   --decoder-last-pipeline-num-layers E give the first
 *                   and/or last rank that many; the other ranks share the
 *                   rest evenly (v must be 1);
 *   virtual stages  chunk c of rank r is virtual stage c*p + r and holds
 *                   layers [(c*p + r) * L/(p*v), (c*p + r + 1) * L/(p*v)),
 *                   so one microbatch visits rank 0, 1, .., p-1, then
 *                   rank 0 again for chunk 1, and so on.
 * Every layer belongs to exactly one (rank, chunk), in virtual-stage
 * order; every (rank, chunk) holds at least one layer. The embedding sits
 * on the first virtual stage (rank 0, chunk 0), the final norm, LM head and
 * loss on the last (rank p-1, chunk v-1). Layer numbers are global and
 * 0-based, as in parameter names and checkpoints.
 *
 * The rules match tsr_config_validate()'s, so a validated config always
 * splits. Called by models/ when it instantiates this rank's chunks, by
 * the memory planner and by the tied-embedding wiring.
 */
#ifndef TSR_SHARDING_PIPELINE_LAYERS_H
#define TSR_SHARDING_PIPELINE_LAYERS_H

#include <stdbool.h>

#include "tessera/config.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_pp_layer_split {
    int num_layers;         /* L >= 1 */
    int pp_size;            /* p >= 1 */
    int num_chunks;         /* v >= 1: model chunks (virtual stages) per rank */
    int first_stage_layers; /* 0: even split */
    int last_stage_layers;  /* 0: even split */
} tsr_pp_layer_split;

/* The split a config asks for: v = (L / p) / --num-layers-per-virtual-
 * pipeline-stage when that is set, else 1. Validates it. */
tsr_status tsr_pp_layers_from_config(const tsr_config *cfg, tsr_pp_layer_split *split);

/* Checks that the split gives every (rank, chunk) a whole, non-zero
 * number of layers; the message says which flag to change. */
tsr_status tsr_pp_layers_validate(const tsr_pp_layer_split *split);

/* Layers [*first_layer, *first_layer + *num_layers) of chunk `chunk` on
 * pipeline rank `pp_rank`. */
tsr_status tsr_pp_layers_range(const tsr_pp_layer_split *split, int pp_rank, int chunk,
                               int *first_layer, int *num_layers);

/* The (rank, chunk) holding global layer `layer`. */
tsr_status tsr_pp_layers_owner(const tsr_pp_layer_split *split, int layer, int *pp_rank,
                               int *chunk);

/* Whether (pp_rank, chunk) is the first virtual stage (embedding) or the
 * last (final norm, LM head, loss). Both are true with p = v = 1. */
bool tsr_pp_layers_has_embedding(const tsr_pp_layer_split *split, int pp_rank, int chunk);
bool tsr_pp_layers_has_head(const tsr_pp_layer_split *split, int pp_rank, int chunk);

#ifdef __cplusplus
}
#endif

#endif /* TSR_SHARDING_PIPELINE_LAYERS_H */
