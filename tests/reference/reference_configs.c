/*
 * reference_configs.c - tiny models that exercise every code path of the
 * GPT family: two micro batches per step (gradient accumulation), warmup
 * and cosine decay, weight decay and gradient clipping. Dropout stays off:
 * PyTorch cannot reproduce tessera's counter-based masks.
 */
#include "reference_configs.h"

#include <string.h>

tsr_status tsr_reference_config(const char *preset, tsr_config *cfg)
{
    tsr_config_defaults(cfg);
    cfg->num_layers = 2;
    cfg->hidden_size = 64;
    cfg->num_attention_heads = 4;
    cfg->seq_length = 32;
    cfg->micro_batch_size = 4;
    cfg->global_batch_size = 8;
    cfg->train_iters = TSR_REFERENCE_STEPS;
    cfg->lr_decay_iters = TSR_REFERENCE_STEPS;
    cfg->lr = 3e-3;
    cfg->min_lr = 3e-4;
    cfg->lr_warmup_iters = 2;
    cfg->lr_decay_style = TSR_LR_COSINE;
    cfg->weight_decay = 0.1;
    cfg->clip_grad = 1.0;
    cfg->seed = 42;
    cfg->data_path = "synthetic:addition";
    cfg->log_interval = 1;
    if (strcmp(preset, "gpt2") == 0)
        return TSR_OK; /* the defaults are GPT-2's architecture */
    if (strcmp(preset, "llama") == 0) {
        tsr_reference_llama_style(cfg, 2);
        return TSR_OK;
    }
    /* adapters on a frozen base: three of GPT-2's linears (with biases),
     * all four of LLaMA's (the SwiGLU gate/up halves, grouped queries) */
    if (strcmp(preset, "gpt2_lora") == 0) {
        cfg->lora_rank = 4;
        cfg->lora_alpha = 8.0;
        cfg->lora_target = "qkv,proj,fc1";
        return TSR_OK;
    }
    /* mixture of experts: 8 experts, top-2, a shared expert, the
     * load-balancing and z-losses, on layers 0 and 2 of 3 (grouped queries) */
    bool capacity = strcmp(preset, "moe_capacity") == 0;
    bool variants = strcmp(preset, "moe_variants") == 0;
    if (strcmp(preset, "moe") == 0 || capacity || variants) {
        tsr_reference_llama_style(cfg, 2);
        /* moe_capacity: the same with capacity factor 1.0, so that the
         * experts over it drop their least probable assignments;
         * moe_variants: top-k of the softmax, the balancing loss per
         * sequence, dropping by position */
        cfg->moe_expert_capacity_factor = capacity || variants ? 1.0 : 0.0;
        cfg->moe_router_pre_softmax = variants;
        cfg->moe_router_load_balancing_type = variants ? TSR_MOE_SEQ_AUX_LOSS : TSR_MOE_AUX_LOSS;
        cfg->moe_token_drop_policy = variants ? 1 : 0;
        cfg->num_layers = 3;
        cfg->num_experts = 8;
        cfg->moe_router_topk = 2;
        cfg->moe_ffn_hidden_size = 48;
        cfg->moe_shared_expert_intermediate_size = 32;
        cfg->moe_layer_freq = "[1,0,1]";
        cfg->moe_aux_loss_coeff = 0.1;
        cfg->moe_z_loss_coeff = 0.01;
        return TSR_OK;
    }
    if (strcmp(preset, "llama_lora") == 0) {
        tsr_reference_llama_style(cfg, 2);
        cfg->lora_rank = 4;
        cfg->lora_alpha = 16.0;
        return TSR_OK;
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG, "unknown reference preset '%s'", preset);
}

void tsr_reference_llama_style(tsr_config *cfg, int query_groups)
{
    cfg->normalization = TSR_NORM_RMSNORM;
    cfg->position_embedding_type = TSR_POS_ROPE;
    cfg->swiglu = true;
    cfg->ffn_hidden_size = 96;
    cfg->disable_bias_linear = true;
    cfg->untie_embeddings_and_output_weights = true;
    cfg->group_query_attention = true;
    cfg->num_query_groups = query_groups;
}
