/*
 * time_inputs.c - see time_inputs.h.
 */
#include "time_inputs.h"

#include "sharding/pipeline_sim.h"

double tsr_time_pipeline_bubble(const tsr_net_dims *dims)
{
    if (dims->pp <= 1)
        return 0.0;
    tsr_pp_schedule_spec spec = {dims->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                                  : TSR_PP_SCHEDULE_1F1B,
                                 dims->pp, 0, dims->microbatches, dims->chunks};
    tsr_pp_sim_options options = {1, 2, TSR_PP_SEND_RENDEZVOUS};
    tsr_pp_sim_rank_stats stats[1024];
    int64_t makespan = 0;
    if (dims->pp > 1024 || tsr_pp_sim_schedule(&spec, &options, stats, &makespan) != TSR_OK ||
        makespan <= 0)
        return -1.0;
    double bubble = 0.0;
    for (int r = 0; r < dims->pp; r++)
        if ((double)stats[r].idle / (double)makespan > bubble)
            bubble = (double)stats[r].idle / (double)makespan;
    return bubble;
}

void tsr_time_inputs_of(const tsr_config *cfg, const tsr_net *net, int world, int ranks_per_node,
                        int threads, double bubble, tsr_time_inputs *in)
{
    const tsr_net_dims *d = tsr_net_get_dims(net);
    tsr_model model = tsr_net_as_model((tsr_net *)net);
    /* every input not set below is 0 (score_bytes: the tiled attention
     * writes no T x T scores), never what the caller's memory held */
    *in = (tsr_time_inputs){0};
    in->tp = d->tp;
    in->pp = d->pp;
    in->dp = tsr_config_data_parallel_size(cfg, world);
    in->ep = d->ep;
    in->sp = d->sp;
    in->recompute = cfg->recompute_granularity == TSR_RECOMPUTE_FULL;
    in->threads = threads;
    in->ranks_per_node = ranks_per_node;
    in->flops_per_iteration =
        tsr_net_flops_per_sample(net) * tsr_config_global_batch_size(cfg, world);
    in->microbatches = d->microbatches;
    in->micro_batch = d->micro_batch;
    in->seq = d->seq;
    in->hidden = d->hidden;
    in->topk = cfg->num_experts > 0 ? cfg->moe_router_topk : 0;
    in->layers_per_stage = d->local_layers;
    in->moe_layers_per_stage = 0;
    for (int c = 0; c < d->chunks && cfg->num_experts > 0; c++)
        for (int l = d->chunk_first_layer[c]; l < d->chunk_first_layer[c] + d->chunk_layers[c]; l++)
            in->moe_layers_per_stage += tsr_config_layer_is_moe(cfg, l);
    in->params_per_device = (double)model.param_count;
    in->element_bytes = (int)sizeof(float); /* this build trains in fp32 */
    in->grad_bytes = (int)sizeof(float);
    in->activation_bytes = (double)tsr_net_forward_saved_floats(net) * in->element_bytes;
    in->bubble = bubble > 0.0 ? bubble : 0.0;
    in->distributed_optimizer = cfg->use_distributed_optimizer;
    in->overlap_grad_reduce = cfg->overlap_grad_reduce;
    in->overlap_param_gather = cfg->overlap_param_gather;
    in->bucket_elements = (double)cfg->ddp_bucket_size;
}

void tsr_time_inputs_set_precision(tsr_time_inputs *in, int element_bytes, int grad_bytes)
{
    if (in->element_bytes > 0)
        in->activation_bytes *= (double)element_bytes / in->element_bytes;
    in->element_bytes = element_bytes;
    in->grad_bytes = grad_bytes;
}
