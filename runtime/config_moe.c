/*
 * config_moe.c - which layers are mixture-of-experts layers, and the MoE
 * flags' combinations refused before anything starts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/config.h"

#define INVALID(...) tsr_error_set(TSR_ERR_INVALID_ARG, __VA_ARGS__)

/* --moe-layer-freq: N, or a list of 0/1 with one entry per layer. *list
 * gets the list's start (NULL for N), *n its length or N. */
static tsr_status parse_freq(const tsr_config *cfg, const char **list, int64_t *n)
{
    const char *s = cfg->moe_layer_freq;
    *list = NULL;
    *n = 1;
    if (s == NULL)
        return TSR_OK;
    if (s[0] != '[') {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s || *end != '\0' || v < 1 || v > cfg->num_layers)
            return INVALID("--moe-layer-freq %s: give N (every N-th layer is MoE, 1 to "
                           "--num-layers %d) or one 0/1 per layer, e.g. [1,0,1,0]",
                           s, cfg->num_layers);
        *n = v;
        return TSR_OK;
    }
    int64_t count = 0;
    const char *p = s + 1;
    for (;;) {
        if ((*p != '0' && *p != '1') || (p[1] != ',' && p[1] != ']'))
            return INVALID("--moe-layer-freq %s: entry %lld is not 0 or 1; give one 0/1 per "
                           "layer, e.g. [1,0,1,0]",
                           s, (long long)count + 1);
        count++;
        if (p[1] == ']') {
            if (p[2] != '\0')
                return INVALID("--moe-layer-freq %s: text after ']'", s);
            break;
        }
        p += 2;
    }
    if (count != cfg->num_layers)
        return INVALID("--moe-layer-freq %s has %lld entries for %d layers; give one per layer", s,
                       (long long)count, cfg->num_layers);
    *list = s + 1;
    *n = count;
    return TSR_OK;
}

bool tsr_config_layer_is_moe(const tsr_config *cfg, int64_t layer)
{
    if (cfg->num_experts <= 0)
        return false;
    const char *list = NULL;
    int64_t n = 1;
    if (parse_freq(cfg, &list, &n) != TSR_OK)
        return false;
    if (list != NULL)
        return layer < n && list[2 * layer] == '1';
    return layer % n == 0;
}

int tsr_config_moe_ffn_hidden_size(const tsr_config *cfg)
{
    return cfg->moe_ffn_hidden_size > 0 ? cfg->moe_ffn_hidden_size
                                        : tsr_config_ffn_hidden_size(cfg);
}

tsr_status tsr_config_validate_moe(const tsr_config *cfg)
{
    bool given = cfg->moe_ffn_hidden_size > 0 || cfg->moe_layer_freq != NULL ||
                 cfg->moe_shared_expert_intermediate_size > 0 || cfg->moe_router_pre_softmax ||
                 cfg->moe_aux_loss_coeff > 0.0 || cfg->moe_z_loss_coeff > 0.0 ||
                 cfg->moe_router_load_balancing_type != TSR_MOE_AUX_LOSS ||
                 cfg->moe_expert_capacity_factor > 0.0 || cfg->moe_token_drop_policy != 0 ||
                 cfg->expert_tensor_parallel_size > 0 || cfg->moe_token_dispatcher_type != 0 ||
                 cfg->moe_pad_expert_input_to_capacity;
    if (cfg->num_experts <= 0) {
        if (given)
            return INVALID("MoE flags (--moe-*, --expert-tensor-parallel-size) are set but "
                           "--num-experts is not; give --num-experts E for mixture-of-experts "
                           "layers");
        return TSR_OK;
    }
    const char *list = NULL;
    int64_t n = 1;
    tsr_status st = parse_freq(cfg, &list, &n);
    if (st != TSR_OK)
        return st;
    bool any = false;
    for (int64_t l = 0; l < cfg->num_layers; l++)
        any = any || tsr_config_layer_is_moe(cfg, l);
    if (!any)
        return INVALID("--moe-layer-freq %s makes no layer MoE; mark at least one",
                       cfg->moe_layer_freq);
    if (cfg->expert_tensor_parallel_size > 1 &&
        cfg->expert_tensor_parallel_size != cfg->tensor_model_parallel_size)
        return INVALID("--expert-tensor-parallel-size %d: give 1 (experts whole on every "
                       "tensor-parallel rank) or --tensor-model-parallel-size %d (experts cut "
                       "over it)",
                       cfg->expert_tensor_parallel_size, cfg->tensor_model_parallel_size);
    if (cfg->moe_token_dispatcher_type == 1 && cfg->moe_pad_expert_input_to_capacity)
        return INVALID("--moe-pad-expert-input-to-capacity is built for the alltoall dispatcher; "
                       "drop it or use --moe-token-dispatcher-type alltoall");
    if (cfg->tensor_model_parallel_size > 1 && !cfg->sequence_parallel)
        return INVALID("MoE layers under --tensor-model-parallel-size %d need "
                       "--sequence-parallel (as Megatron-LM requires): each tensor-parallel "
                       "rank routes its share of the tokens",
                       cfg->tensor_model_parallel_size);
    if (cfg->moe_pad_expert_input_to_capacity && !(cfg->moe_expert_capacity_factor > 0.0))
        return INVALID("--moe-pad-expert-input-to-capacity needs --moe-expert-capacity-factor: "
                       "without a capacity there is nothing to pad to");
    if (cfg->moe_token_drop_policy != 0 && !(cfg->moe_expert_capacity_factor > 0.0))
        return INVALID("--moe-token-drop-policy only applies with --moe-expert-capacity-factor; "
                       "give a capacity factor or drop the policy");
    if (cfg->moe_aux_loss_coeff > 0.0 &&
        cfg->moe_router_load_balancing_type == TSR_MOE_NO_BALANCING)
        return INVALID("--moe-aux-loss-coeff %g is set but --moe-router-load-balancing-type is "
                       "none; choose aux_loss or seq_aux_loss, or drop the coefficient",
                       cfg->moe_aux_loss_coeff);
    return TSR_OK;
}
