/*
 * time_inputs.c - see time_inputs.h.
 */
#include "time_inputs.h"

#include "gpt_spec.h"
#include "sharding/pipeline_sim.h"
#include "tessera/kernels.h"
#include "tessera/modules.h"

static void add_gemm(tsr_time_inputs *in, double rows, double k, double n, double count)
{
    if (count > 0.0 && rows > 0.0 && in->gemms < TSR_TIME_MAX_GEMMS)
        in->gemm[in->gemms++] = (tsr_time_gemm){rows, k, n, count, false};
}

static void add_routed_gemm(tsr_time_inputs *in, double rows, double k, double n, double count)
{
    int before = in->gemms;
    add_gemm(in, rows, k, n, count);
    if (in->gemms > before)
        in->gemm[before].routed = true;
}

/* The stage's matrix products of one micro batch's forward as the
 * built-in decoder (models/gpt_spec.c) runs them on this rank, and its
 * attention scores' FLOPs (Megatron's 4 h per computed score element and
 * sample, over tp). Column-parallel products see every token (gathered
 * under SP), row-parallel ones a tp share of their input width. An MoE
 * layer's router and shared expert see the rank's tokens (a tp share
 * under SP unless experts are cut over tp), and each local expert the
 * rows routed to it from the ep ranks, taken as balanced: tokens x k / E
 * from each (a capacity's drops and padding are not counted). */
static void gemms_of(const tsr_config *cfg, const tsr_net_dims *d, tsr_time_inputs *in)
{
    double tp = d->tp, c = (double)d->hidden, tokens = (double)(d->micro_batch * d->seq);
    double heads = cfg->num_attention_heads, head_dim = c / heads;
    double qkv = (heads + 2.0 * tsr_config_num_query_groups(cfg)) * head_dim;
    double ffn = tsr_config_ffn_hidden_size(cfg), gate = cfg->swiglu ? 2.0 : 1.0;
    bool etp = cfg->expert_tensor_parallel_size > 1 && d->tp > 1;
    double routed = d->sp && !etp ? tokens / tp : tokens, own = d->sp ? tokens / tp : tokens;
    double experts = cfg->num_experts, k = cfg->moe_router_topk;
    double width = tsr_config_moe_ffn_hidden_size(cfg) / (etp ? tp : 1.0);
    double shared = cfg->moe_shared_expert_intermediate_size;
    double per_expert = experts > 0 ? routed * k / experts * d->ep : 0.0;
    double layers = (double)in->layers_per_stage, moe = (double)in->moe_layers_per_stage;
    in->gemms = 0;
    add_gemm(in, tokens, c, qkv / tp, layers);
    add_gemm(in, tokens, heads * head_dim / tp, c, layers);
    add_gemm(in, tokens, c, gate * ffn / tp, layers - moe);
    add_gemm(in, tokens, ffn / tp, c, layers - moe);
    add_gemm(in, routed, c, experts, moe);
    add_routed_gemm(in, per_expert, c, gate * width, moe * experts / d->ep);
    add_routed_gemm(in, per_expert, width, c, moe * experts / d->ep);
    add_gemm(in, own, c, gate * shared, shared > 0 ? moe : 0.0);
    add_gemm(in, own, shared, c, shared > 0 ? moe : 0.0);
    if (d->has_head) {
        double chunk = tokens < TSR_LM_HEAD_CHUNK_ROWS ? tokens : TSR_LM_HEAD_CHUNK_ROWS;
        add_gemm(in, chunk, c, (double)d->l_vocab, tokens / chunk);
    }
    double scores = 0.0;
    for (int ch = 0; ch < d->chunks; ch++)
        scores += tsr_config_attention_elements(cfg, d->chunk_first_layer[ch],
                                                d->chunk_layers[ch], d->seq);
    in->other_flops = 4.0 * c / tp * (double)d->micro_batch * scores;
}

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
    /* what tessera train moves over tp, pp and ep is fp32, except under
     * --bf16 / --fp16 the pipeline's activations (16-bit, counted here as
     * fp32: the pp term then overestimates by at most a quarter) */
    in->element_bytes = (int)sizeof(float);
    in->grad_bytes = (int)sizeof(float);
    in->activation_bytes = (double)tsr_net_forward_saved_floats(net) * in->element_bytes;
    in->bubble = bubble > 0.0 ? bubble : 0.0;
    in->distributed_optimizer = cfg->use_distributed_optimizer;
    in->overlap_grad_reduce = cfg->overlap_grad_reduce;
    in->overlap_param_gather = cfg->overlap_param_gather;
    in->bucket_elements = (double)cfg->ddp_bucket_size;
    /* the list describes the built-in decoder; another spec's products
     * are not known, and its FLOPs keep the rate by threads */
    if (tsr_net_spec(net)->flops_per_sample == tsr_gpt_flops_per_sample)
        gemms_of(cfg, d, in);
}

void tsr_time_inputs_set_context_parallel(tsr_time_inputs *in, const tsr_config *cfg, int cp,
                                          double flops_per_iteration)
{
    if (cp <= 1)
        return;
    double head_dim = (double)cfg->hidden_size / cfg->num_attention_heads;
    double kv = 2.0 * tsr_config_num_query_groups(cfg) * head_dim / in->tp;
    in->cp = cp;
    in->flops_per_iteration = flops_per_iteration;
    in->other_flops *= cp;
    in->cp_elements = (double)(in->micro_batch * in->seq) * kv;
}

void tsr_time_inputs_set_precision(tsr_time_inputs *in, int element_bytes, int grad_bytes)
{
    if (in->element_bytes > 0)
        in->activation_bytes *= (double)element_bytes / in->element_bytes;
    in->element_bytes = element_bytes;
    in->grad_bytes = grad_bytes;
}
