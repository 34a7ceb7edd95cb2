/*
 * gpt_spec.c - the GPT / LLaMA-style decoder declared from the built-in
 * modules. Every layer is
 *
 *   sequence[ residual(site 1)[ norm "input_layernorm", attention "self_attention" ],
 *             residual(site 2)[ norm "pre_mlp_layernorm", mlp "mlp" ] ]
 *
 * under "decoder.layers.<i>", between the embedding ("embedding"), the
 * final norm ("decoder.final_layernorm") and the LM head ("output_layer",
 * or the embedding's table when tied): Megatron-Core's names, so
 * checkpoints read naturally next to Megatron's.
 */
#include "gpt_spec.h"

#include <math.h>
#include <string.h>

#include "tessera/modules.h"

#define NEW(kind, name, cfg) tsr_spec_new(arena, &(kind), name, &(cfg), sizeof(cfg))

static tsr_spec *residual(tsr_spec_arena *arena, const tsr_config *cfg, int site,
                          const tsr_spec *norm, const tsr_spec *branch)
{
    tsr_residual_config rc = {cfg->hidden_dropout, site};
    tsr_spec *r = NEW(tsr_module_residual, NULL, rc);
    if (r == NULL || tsr_spec_add_child(r, norm) != TSR_OK ||
        tsr_spec_add_child(r, branch) != TSR_OK)
        return NULL;
    return r;
}

static const tsr_spec *layer_spec(tsr_spec_arena *arena, const tsr_config *cfg,
                                  const tsr_attn_mask *mask, bool moe)
{
    float std = (float)cfg->init_method_std;
    float out_std = std / sqrtf(2.0f * (float)cfg->num_layers);
    bool bias = !cfg->disable_bias_linear;
    tsr_norm_config nc = {cfg->normalization, (float)cfg->norm_epsilon};
    tsr_lora_config lora = {cfg->lora_rank, (float)tsr_config_lora_scale(cfg), cfg->lora_dropout,
                            0};
    if (tsr_config_lora_targets(cfg, &lora.targets) != TSR_OK)
        return NULL;
    tsr_attention_config ac = {cfg->num_attention_heads,
                               tsr_config_num_query_groups(cfg),
                               cfg->hidden_size / cfg->num_attention_heads,
                               bias,
                               cfg->position_embedding_type == TSR_POS_ROPE,
                               (float)cfg->rotary_base,
                               cfg->attention_dropout,
                               std,
                               out_std,
                               *mask,
                               cfg->reset_position_ids,
                               lora};
    tsr_mlp_config mc = {tsr_config_ffn_hidden_size(cfg), cfg->swiglu, bias, std, out_std, lora};
    tsr_spec *attention = residual(arena, cfg, 1, NEW(tsr_module_norm, "input_layernorm", nc),
                                   NEW(tsr_module_attention, "self_attention", ac));
    tsr_moe_config ec = {cfg->num_experts,
                         cfg->moe_router_topk,
                         tsr_config_moe_ffn_hidden_size(cfg),
                         cfg->moe_shared_expert_intermediate_size,
                         cfg->swiglu,
                         cfg->moe_router_pre_softmax,
                         cfg->moe_router_load_balancing_type,
                         (float)cfg->moe_aux_loss_coeff,
                         (float)cfg->moe_z_loss_coeff,
                         cfg->moe_expert_capacity_factor,
                         cfg->moe_token_drop_policy == 1,
                         cfg->moe_pad_expert_input_to_capacity,
                         cfg->moe_token_dispatcher_type == 1,
                         cfg->expert_tensor_parallel_size > 1,
                         std,
                         out_std};
    tsr_spec *mlp = residual(arena, cfg, 2, NEW(tsr_module_norm, "pre_mlp_layernorm", nc),
                             moe ? NEW(tsr_module_moe, "mlp", ec) : NEW(tsr_module_mlp, "mlp", mc));
    tsr_spec *layer = tsr_spec_new(arena, &tsr_module_sequence, NULL, NULL, 0);
    if (attention == NULL || mlp == NULL || layer == NULL ||
        tsr_spec_add_child(layer, attention) != TSR_OK || tsr_spec_add_child(layer, mlp) != TSR_OK)
        return NULL;
    return layer;
}

tsr_status tsr_gpt_build_spec(const tsr_config *cfg, tsr_spec_arena *arena, tsr_model_spec *out)
{
    float std = (float)cfg->init_method_std;
    tsr_embedding_config ec = {cfg->position_embedding_type == TSR_POS_LEARNED_ABSOLUTE,
                               cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings
                                                                : cfg->seq_length,
                               std, cfg->hidden_dropout, cfg->reset_position_ids};
    tsr_norm_config nc = {cfg->normalization, (float)cfg->norm_epsilon};
    tsr_lm_head_config hc = {!cfg->untie_embeddings_and_output_weights, std};
    out->embedding = NEW(tsr_module_embedding, "embedding", ec);
    out->final_norm = NEW(tsr_module_norm, "decoder.final_layernorm", nc);
    out->head = NEW(tsr_module_lm_head, "output_layer", hc);
    out->layer_prefix = "decoder.layers";
    out->num_layers = cfg->num_layers;
    out->layers = tsr_spec_layer_array(arena, cfg->num_layers);
    out->flops_per_sample = tsr_gpt_flops_per_sample;
    if (out->embedding == NULL || out->final_norm == NULL || out->head == NULL ||
        out->layers == NULL)
        return TSR_ERR_OUT_OF_MEMORY;
    /* consecutive layers of one attention pattern and MLP kind share a
     * declaration */
    tsr_attn_mask previous;
    bool previous_moe = false;
    for (int64_t l = 0; l < cfg->num_layers; l++) {
        tsr_attn_mask mask;
        tsr_status st = tsr_config_layer_attention(cfg, l, &mask);
        if (st != TSR_OK)
            return st;
        bool moe = tsr_config_layer_is_moe(cfg, l);
        if (l > 0 && memcmp(&mask, &previous, sizeof mask) == 0 && moe == previous_moe) {
            out->layers[l] = out->layers[l - 1];
            continue;
        }
        out->layers[l] = layer_spec(arena, cfg, &mask, moe);
        if (out->layers[l] == NULL)
            return TSR_ERR_OUT_OF_MEMORY;
        previous = mask;
        previous_moe = moe;
    }
    return TSR_OK;
}

double tsr_gpt_flops_per_sample(const tsr_config *cfg, int64_t padded_vocab)
{
    /* Megatron-LM's num_floating_point_operations() for one sample:
     * 12 = 3 (fwd + 2x bwd) x 2 (multiply-add) x 2 (two GEMMs per block
     * half), except that the attention scores count only the score
     * elements of the tiles the kernel computes under each layer's
     * pattern (Megatron counts the full T x T square; documents and
     * prefixes, which depend on the data, are not counted) */
    double h = (double)cfg->hidden_size, s = (double)cfg->seq_length, L = (double)cfg->num_layers;
    double gated = cfg->swiglu ? 1.5 : 1.0;
    double projections = 1.0 + (double)tsr_config_num_query_groups(cfg) /
                                   (double)cfg->num_attention_heads;
    double dense_mlp = (double)tsr_config_ffn_hidden_size(cfg) / h * gated;
    /* an MoE layer: k experts and the shared one per token, and the router
     * (E outputs, a third of one MLP's two GEMMs per output column) */
    double moe_mlp = ((double)cfg->moe_router_topk * tsr_config_moe_ffn_hidden_size(cfg) +
                      (double)cfg->moe_shared_expert_intermediate_size) /
                         h * gated +
                     (double)cfg->num_experts / (2.0 * h);
    double mlp = 0.0;
    for (int64_t l = 0; l < cfg->num_layers; l++)
        mlp += tsr_config_layer_is_moe(cfg, l) ? moe_mlp : dense_mlp;
    mlp /= L;
    double logits = (double)padded_vocab / (2.0 * L * h);
    double scores = tsr_config_attention_elements(cfg, 0, cfg->num_layers, cfg->seq_length);
    return 12.0 * s * L * h * h * (projections + mlp + logits) + 12.0 * h * scores;
}
