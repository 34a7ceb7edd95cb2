/*
 * pipeline_layers.c - the layer split across pipeline stages (rules in
 * pipeline_layers.h). Pure arithmetic; the uneven split keeps Megatron's
 * meaning of the two flags: only the named end stages differ, every other
 * stage holds the same number of layers.
 */
#include <stddef.h>
#include <stdint.h>

#include "pipeline_layers.h"

#define INVALID(...) tsr_error_set(TSR_ERR_INVALID_ARG, __VA_ARGS__)

static bool uneven(const tsr_pp_layer_split *s)
{
    return s->first_stage_layers > 0 || s->last_stage_layers > 0;
}

tsr_status tsr_pp_layers_validate(const tsr_pp_layer_split *s)
{
    if (s == NULL)
        return INVALID("pipeline layer split: no split given");
    int L = s->num_layers, p = s->pp_size, v = s->num_chunks;
    int first = s->first_stage_layers, last = s->last_stage_layers;
    if (L < 1)
        return INVALID("pipeline layer split: --num-layers %d must be at least 1", L);
    if (p < 1)
        return INVALID("pipeline layer split: --pipeline-model-parallel-size %d must be at "
                       "least 1",
                       p);
    if (v < 1)
        return INVALID("pipeline layer split: %d model chunks per rank; use 1 without virtual "
                       "stages",
                       v);
    if (first < 0 || last < 0)
        return INVALID("pipeline layer split: --decoder-first-pipeline-num-layers %d and "
                       "--decoder-last-pipeline-num-layers %d must not be negative",
                       first, last);
    if (v > 1 && p < 2)
        return INVALID("pipeline layer split: %d virtual stages need "
                       "--pipeline-model-parallel-size >= 2",
                       v);
    if (uneven(s)) {
        if (p < 2)
            return INVALID("pipeline layer split: --decoder-first/last-pipeline-num-layers "
                           "need --pipeline-model-parallel-size >= 2");
        if (v > 1)
            return INVALID("pipeline layer split: uneven splits "
                           "(--decoder-first/last-pipeline-num-layers) cannot be combined "
                           "with --num-layers-per-virtual-pipeline-stage");
        int middle_stages = p - (first > 0) - (last > 0);
        int64_t middle_layers = (int64_t)L - first - last;
        if (middle_layers < 0 || (middle_stages == 0 && middle_layers != 0) ||
            (middle_stages > 0 && (middle_layers == 0 || middle_layers % middle_stages != 0)))
            return INVALID("pipeline layer split: --num-layers %d minus the first (%d) and last "
                           "(%d) stage layers leaves %lld layers, which do not divide evenly "
                           "over the %d other pipeline stages",
                           L, first, last, (long long)middle_layers, middle_stages);
        return TSR_OK;
    }
    if (L % p != 0)
        return INVALID("pipeline layer split: --num-layers %d is not divisible by "
                       "--pipeline-model-parallel-size %d; use a multiple of %d layers, or set "
                       "--decoder-first-pipeline-num-layers / "
                       "--decoder-last-pipeline-num-layers for an uneven split",
                       L, p, p);
    if ((L / p) % v != 0)
        return INVALID("pipeline layer split: %d layers per pipeline stage do not divide into "
                       "%d virtual stages; choose --num-layers-per-virtual-pipeline-stage to "
                       "divide %d",
                       L / p, v, L / p);
    return TSR_OK;
}

tsr_status tsr_pp_layers_from_config(const tsr_config *cfg, tsr_pp_layer_split *split)
{
    if (cfg == NULL || split == NULL)
        return INVALID("pipeline layer split: config or split is NULL");
    int p = cfg->pipeline_model_parallel_size, L = cfg->num_layers;
    int per_virtual = cfg->num_layers_per_virtual_pipeline_stage;
    int v = 1;
    if (per_virtual < 0)
        return INVALID("--num-layers-per-virtual-pipeline-stage %d must be positive",
                       per_virtual);
    if (per_virtual > 0) {
        if (p < 1 || L < 1 || L % p != 0 || (L / p) % per_virtual != 0)
            return INVALID("pipeline layer split: --num-layers %d over "
                           "--pipeline-model-parallel-size %d does not give a whole number of "
                           "virtual stages of --num-layers-per-virtual-pipeline-stage %d layers",
                           L, p, per_virtual);
        v = L / p / per_virtual;
    }
    tsr_pp_layer_split s = {.num_layers = L,
                            .pp_size = p,
                            .num_chunks = v,
                            .first_stage_layers = cfg->decoder_first_pipeline_num_layers,
                            .last_stage_layers = cfg->decoder_last_pipeline_num_layers};
    tsr_status st = tsr_pp_layers_validate(&s);
    if (st == TSR_OK)
        *split = s;
    return st;
}

/* Layers on rank r under an uneven split (v = 1). */
static int uneven_size(const tsr_pp_layer_split *s, int r, int middle)
{
    if (r == 0 && s->first_stage_layers > 0)
        return s->first_stage_layers;
    if (r == s->pp_size - 1 && s->last_stage_layers > 0)
        return s->last_stage_layers;
    return middle;
}

static int uneven_middle(const tsr_pp_layer_split *s)
{
    int first = s->first_stage_layers, last = s->last_stage_layers;
    int middle_stages = s->pp_size - (first > 0) - (last > 0);
    return middle_stages > 0 ? (s->num_layers - first - last) / middle_stages : 0;
}

tsr_status tsr_pp_layers_range(const tsr_pp_layer_split *s, int pp_rank, int chunk,
                               int *first_layer, int *num_layers)
{
    tsr_status st = tsr_pp_layers_validate(s);
    if (st != TSR_OK)
        return st;
    if (first_layer == NULL || num_layers == NULL)
        return INVALID("pipeline layer split: output pointers are NULL");
    if (pp_rank < 0 || pp_rank >= s->pp_size || chunk < 0 || chunk >= s->num_chunks)
        return INVALID("pipeline layer split: stage (rank %d, chunk %d) is outside ranks 0..%d, "
                       "chunks 0..%d",
                       pp_rank, chunk, s->pp_size - 1, s->num_chunks - 1);
    if (uneven(s)) {
        int middle = uneven_middle(s);
        *first_layer = pp_rank == 0 ? 0 : uneven_size(s, 0, middle) + (pp_rank - 1) * middle;
        *num_layers = uneven_size(s, pp_rank, middle);
        return TSR_OK;
    }
    int per = s->num_layers / (s->pp_size * s->num_chunks);
    *first_layer = (chunk * s->pp_size + pp_rank) * per;
    *num_layers = per;
    return TSR_OK;
}

tsr_status tsr_pp_layers_owner(const tsr_pp_layer_split *s, int layer, int *pp_rank, int *chunk)
{
    tsr_status st = tsr_pp_layers_validate(s);
    if (st != TSR_OK)
        return st;
    if (pp_rank == NULL || chunk == NULL)
        return INVALID("pipeline layer split: output pointers are NULL");
    if (layer < 0 || layer >= s->num_layers)
        return INVALID("pipeline layer split: layer %d is outside 0..%d", layer,
                       s->num_layers - 1);
    if (uneven(s)) {
        int middle = uneven_middle(s), start = 0;
        for (int r = 0; r < s->pp_size; r++) {
            int n = uneven_size(s, r, middle);
            if (layer < start + n) {
                *pp_rank = r;
                *chunk = 0;
                return TSR_OK;
            }
            start += n;
        }
        return tsr_error_set(TSR_ERR_INTERNAL, "pipeline layer split: layer %d has no stage",
                             layer);
    }
    int stage = layer / (s->num_layers / (s->pp_size * s->num_chunks));
    *pp_rank = stage % s->pp_size;
    *chunk = stage / s->pp_size;
    return TSR_OK;
}

bool tsr_pp_layers_has_embedding(const tsr_pp_layer_split *s, int pp_rank, int chunk)
{
    (void)s;
    return pp_rank == 0 && chunk == 0;
}

bool tsr_pp_layers_has_head(const tsr_pp_layer_split *s, int pp_rank, int chunk)
{
    return pp_rank == s->pp_size - 1 && chunk == s->num_chunks - 1;
}
