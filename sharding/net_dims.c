/*
 * net_dims.c - the sizes a layout gives this rank: its share of the
 * sequence and the vocabulary under tensor parallelism, its pipeline
 * stage's chunks of layers and the activation slots of the schedule.
 */
#include <string.h>

#include "net_internal.h"
#include "sharding/pipeline_layers.h"

/* ------------------------------------------------------------------ dims */

tsr_net_dims tsr_net_dims_from_config(const tsr_config *cfg, int64_t vocab_size, int tp_rank)
{
    tsr_net_dims d;
    memset(&d, 0, sizeof d);
    d.layers = cfg->num_layers;
    d.hidden = cfg->hidden_size;
    d.vocab = vocab_size;
    d.padded_vocab = tsr_config_padded_vocab_size(cfg, (int)vocab_size);
    d.seq = cfg->seq_length;
    d.micro_batch = cfg->micro_batch_size;
    d.tp = cfg->tensor_model_parallel_size;
    d.tp_rank = tp_rank;
    d.ep = cfg->expert_model_parallel_size > 1 ? cfg->expert_model_parallel_size : 1;
    d.dp = 1;
    d.sp = cfg->sequence_parallel && d.tp > 1;
    d.l_vocab = d.padded_vocab / d.tp;
    d.vocab_start = (int64_t)tp_rank * d.l_vocab;
    d.l_seq = d.sp ? d.seq / d.tp : d.seq;
    d.pp = 1;
    d.chunks = 1;
    d.chunk_layers[0] = cfg->num_layers;
    d.has_embedding = d.has_head = true;
    d.local_layers = d.layers;
    d.slots = 1;
    d.microbatches = 1;
    return d;
}

void tsr_net_dims_set_experts(tsr_net_dims *d, int ep_rank, int dp_size)
{
    d->ep_rank = ep_rank;
    d->dp = dp_size > 1 ? dp_size : 1;
}

tsr_pp_schedule_spec tsr_net_schedule_spec(const tsr_net_dims *d, int pp_rank)
{
    tsr_pp_schedule_spec spec = {d->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                               : TSR_PP_SCHEDULE_1F1B,
                                 d->pp, pp_rank, d->microbatches, d->chunks};
    return spec;
}

tsr_status tsr_net_dims_set_pipeline(tsr_net_dims *d, const tsr_config *cfg, int pp_rank,
                                     int microbatches)
{
    tsr_pp_layer_split split;
    tsr_status st = tsr_pp_layers_from_config(cfg, &split);
    if (st != TSR_OK)
        return st;
    if (split.num_chunks > TSR_NET_MAX_CHUNKS)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%d virtual pipeline stages per rank; at most "
                                                  "%d are supported",
                             split.num_chunks, TSR_NET_MAX_CHUNKS);
    d->pp = split.pp_size;
    d->pp_rank = pp_rank;
    d->chunks = split.num_chunks;
    d->local_layers = 0;
    for (int c = 0; c < d->chunks; c++) {
        st = tsr_pp_layers_range(&split, pp_rank, c, &d->chunk_first_layer[c],
                                 &d->chunk_layers[c]);
        if (st != TSR_OK)
            return st;
        d->local_layers += d->chunk_layers[c];
    }
    d->has_embedding = tsr_pp_layers_has_embedding(&split, pp_rank, 0);
    d->has_head = tsr_pp_layers_has_head(&split, pp_rank, d->chunks - 1);
    d->microbatches = microbatches;
    d->slots = 1;
    if (d->pp > 1) {
        tsr_pp_schedule_spec spec = tsr_net_schedule_spec(d, pp_rank);
        st = tsr_pp_schedule_max_in_flight(&spec, &d->slots);
    }
    return st;
}

size_t tsr_net_schedule_length(const tsr_net_dims *d)
{
    if (d->pp <= 1)
        return 0;
    tsr_pp_schedule_spec spec = tsr_net_schedule_spec(d, d->pp_rank);
    size_t count = 0;
    return tsr_pp_schedule_count(&spec, &count) == TSR_OK ? count : 0;
}
