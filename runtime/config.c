/*
 * config.c - defaults, presets, derived sizes and validation of tsr_config.
 *
 * Validation runs before MPI is initialised: it may use the world size read
 * from the launcher's environment but never communicates. Every message
 * names the flags involved and says what to change.
 */
#include "tessera/config.h"

#include "tessera/kernels.h"

#include <string.h>

void tsr_config_defaults(tsr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->tensor_model_parallel_size = 1;
    cfg->pipeline_model_parallel_size = 1;
    cfg->context_parallel_size = 1;
    cfg->expert_model_parallel_size = 1;
    cfg->ddp_bucket_size = 40000000;
    cfg->rank_order = "tp-cp-ep-dp-pp";

    /* a tiny model that trains the addition demo in seconds */
    cfg->model_name = "gpt";
    cfg->num_layers = 2;
    cfg->hidden_size = 64;
    cfg->num_attention_heads = 4;
    cfg->seq_length = 32;
    cfg->make_vocab_size_divisible_by = 128;
    cfg->normalization = TSR_NORM_LAYERNORM;
    cfg->norm_epsilon = 1e-5;
    cfg->position_embedding_type = TSR_POS_LEARNED_ABSOLUTE;
    cfg->rotary_base = 10000.0;
    cfg->init_method_std = 0.02;
    cfg->moe_router_topk = 2;
    cfg->sparse_block = 64;
    cfg->sparse_stride = 256;
    cfg->eod_token = -1;

    cfg->micro_batch_size = 8;
    cfg->train_iters = 100;
    cfg->lr = 1e-3;
    cfg->min_lr = 0.0;
    cfg->lr_decay_style = TSR_LR_COSINE;
    cfg->weight_decay = 0.01;
    cfg->adam_beta1 = 0.9;
    cfg->adam_beta2 = 0.999;
    cfg->adam_eps = 1e-8;
    cfg->clip_grad = 1.0;
    cfg->seed = 1234;
    cfg->max_nan_iters_in_a_row = 10;
    cfg->recompute_method = TSR_RECOMPUTE_UNIFORM;
    cfg->recompute_num_layers = 1;

    cfg->data_path = "synthetic:addition";
    cfg->split = "969,30,1";
    cfg->eval_iters = 10;
    cfg->ckpt_step = -1;

    cfg->log_interval = 10;
    cfg->log_level = 1; /* TSR_LOG_INFO */
    cfg->distributed_timeout_minutes = 10.0;
    cfg->bind = TSR_BIND_CORE;
    cfg->backend = TSR_BACKEND_AUTO;
}

void tsr_config_apply_preset(tsr_config *cfg)
{
    switch (cfg->model) {
    case TSR_PRESET_GPT2: /* GPT-2 small (124M) */
        cfg->num_layers = 12;
        cfg->hidden_size = 768;
        cfg->num_attention_heads = 12;
        cfg->num_query_groups = 0;
        cfg->ffn_hidden_size = 0;
        cfg->seq_length = 1024;
        cfg->max_position_embeddings = 1024;
        cfg->normalization = TSR_NORM_LAYERNORM;
        cfg->position_embedding_type = TSR_POS_LEARNED_ABSOLUTE;
        cfg->swiglu = false;
        cfg->untie_embeddings_and_output_weights = false;
        break;
    case TSR_PRESET_LLAMA: /* LLaMA architecture at GPT-2-small scale */
        cfg->num_layers = 12;
        cfg->hidden_size = 768;
        cfg->num_attention_heads = 12;
        cfg->group_query_attention = true;
        cfg->num_query_groups = 4;
        cfg->ffn_hidden_size = 2048;
        cfg->seq_length = 1024;
        cfg->max_position_embeddings = 1024;
        cfg->normalization = TSR_NORM_RMSNORM;
        cfg->position_embedding_type = TSR_POS_ROPE;
        cfg->swiglu = true;
        cfg->disable_bias_linear = true;
        cfg->untie_embeddings_and_output_weights = true;
        break;
    case TSR_PRESET_NONE:
        break;
    }
}

int tsr_config_data_parallel_size(const tsr_config *cfg, int world_size)
{
    long long model_parallel = (long long)cfg->tensor_model_parallel_size *
                               cfg->pipeline_model_parallel_size * cfg->context_parallel_size;
    if (model_parallel <= 0 || world_size % model_parallel != 0)
        return 0;
    return (int)(world_size / model_parallel);
}

int tsr_config_ffn_hidden_size(const tsr_config *cfg)
{
    if (cfg->ffn_hidden_size > 0)
        return cfg->ffn_hidden_size;
    if (cfg->swiglu) /* keeps the MLP's parameter count at that of a 4h GELU MLP */
        return ((8 * cfg->hidden_size / 3) + 63) / 64 * 64;
    return 4 * cfg->hidden_size;
}

int tsr_config_num_query_groups(const tsr_config *cfg)
{
    return cfg->num_query_groups > 0 ? cfg->num_query_groups : cfg->num_attention_heads;
}

int tsr_config_global_batch_size(const tsr_config *cfg, int world_size)
{
    if (cfg->global_batch_size > 0)
        return cfg->global_batch_size;
    int dp = tsr_config_data_parallel_size(cfg, world_size);
    return cfg->micro_batch_size * (dp > 0 ? dp : 1);
}

int tsr_config_microbatches_per_rank(const tsr_config *cfg, int world_size)
{
    int dp = tsr_config_data_parallel_size(cfg, world_size);
    int per_step = cfg->micro_batch_size * (dp > 0 ? dp : 1);
    return tsr_config_global_batch_size(cfg, world_size) / per_step;
}

int tsr_config_padded_vocab_size(const tsr_config *cfg, int vocab_size)
{
    int multiple = cfg->make_vocab_size_divisible_by * cfg->tensor_model_parallel_size;
    if (multiple <= 0)
        return vocab_size;
    return (vocab_size + multiple - 1) / multiple * multiple;
}

#define INVALID(...) tsr_error_set(TSR_ERR_INVALID_ARG, __VA_ARGS__)

static tsr_status validate_parallel(const tsr_config *cfg, int world_size)
{
    int tp = cfg->tensor_model_parallel_size, pp = cfg->pipeline_model_parallel_size;
    int cp = cfg->context_parallel_size, ep = cfg->expert_model_parallel_size;
    long long model_parallel = (long long)tp * pp * cp;
    if (world_size % model_parallel != 0)
        return INVALID("world size %d is not divisible by --tensor-model-parallel-size %d x "
                       "--pipeline-model-parallel-size %d x --context-parallel-size %d = %lld; "
                       "launch a multiple of %lld ranks or change the parallel sizes",
                       world_size, tp, pp, cp, model_parallel, model_parallel);
    int dp = (int)(world_size / model_parallel);
    if (ep > 1 && (dp * cp) % ep != 0)
        return INVALID("--expert-model-parallel-size %d must divide data-parallel size %d x "
                       "--context-parallel-size %d = %d; choose an expert-parallel size that "
                       "divides it",
                       ep, dp, cp, dp * cp);
    if (ep > 1 && cfg->num_experts == 0)
        return INVALID("--expert-model-parallel-size %d needs a mixture-of-experts model; "
                       "set --num-experts (a multiple of %d)",
                       ep, ep);
    if (cfg->num_experts > 0 && cfg->num_experts % ep != 0)
        return INVALID("--num-experts %d is not divisible by --expert-model-parallel-size %d; "
                       "each expert-parallel rank must hold the same number of experts",
                       cfg->num_experts, ep);
    if (cfg->num_experts > 0 && cfg->moe_router_topk > cfg->num_experts)
        return INVALID("--moe-router-topk %d exceeds --num-experts %d; choose k <= %d",
                       cfg->moe_router_topk, cfg->num_experts, cfg->num_experts);
    if (cfg->sequence_parallel && tp == 1)
        return INVALID("--sequence-parallel needs --tensor-model-parallel-size > 1 "
                       "(it splits the sequence across the tensor-parallel group)");
    if (cfg->sequence_parallel && cfg->seq_length % tp != 0)
        return INVALID("--seq-length %d is not divisible by --tensor-model-parallel-size %d, "
                       "which --sequence-parallel requires",
                       cfg->seq_length, tp);
    if (cp > 1 && cfg->seq_length % (2 * cp) != 0)
        return INVALID("--seq-length %d is not divisible by 2 x --context-parallel-size = %d; "
                       "context parallelism splits the sequence into 2 x cp chunks",
                       cfg->seq_length, 2 * cp);
    if (cfg->overlap_param_gather && !cfg->use_distributed_optimizer)
        return INVALID("--overlap-param-gather needs --use-distributed-optimizer");
    return TSR_OK;
}

static tsr_status validate_pipeline(const tsr_config *cfg)
{
    int pp = cfg->pipeline_model_parallel_size, layers = cfg->num_layers;
    int first = cfg->decoder_first_pipeline_num_layers;
    int last = cfg->decoder_last_pipeline_num_layers;
    if (first > 0 || last > 0) {
        if (pp < 2)
            return INVALID("--decoder-first/last-pipeline-num-layers need "
                           "--pipeline-model-parallel-size >= 2");
        if (cfg->num_layers_per_virtual_pipeline_stage > 0)
            return INVALID("uneven pipeline splits (--decoder-first/last-pipeline-num-layers) "
                           "cannot be combined with --num-layers-per-virtual-pipeline-stage");
        int middle_stages = pp - (first > 0) - (last > 0);
        int middle_layers = layers - first - last;
        if (middle_layers < 0 || (middle_stages == 0 && middle_layers != 0) ||
            (middle_stages > 0 && (middle_layers == 0 || middle_layers % middle_stages != 0)))
            return INVALID("--num-layers %d minus the first (%d) and last (%d) stage layers "
                           "leaves %d layers, which do not divide evenly over the %d other "
                           "pipeline stages",
                           layers, first, last, middle_layers, middle_stages);
        return TSR_OK;
    }
    if (layers % pp != 0)
        return INVALID("--num-layers %d is not divisible by --pipeline-model-parallel-size %d; "
                       "use a multiple of %d layers, or set --decoder-first-pipeline-num-layers "
                       "/ --decoder-last-pipeline-num-layers for an uneven split",
                       layers, pp, pp);
    int per_virtual = cfg->num_layers_per_virtual_pipeline_stage;
    if (per_virtual > 0) {
        if (pp < 2)
            return INVALID("--num-layers-per-virtual-pipeline-stage needs "
                           "--pipeline-model-parallel-size >= 2");
        if ((layers / pp) % per_virtual != 0)
            return INVALID("layers per pipeline stage (%d = --num-layers %d / "
                           "--pipeline-model-parallel-size %d) is not divisible by "
                           "--num-layers-per-virtual-pipeline-stage %d",
                           layers / pp, layers, pp, per_virtual);
    }
    return TSR_OK;
}

static tsr_status validate_model(const tsr_config *cfg)
{
    int heads = cfg->num_attention_heads, tp = cfg->tensor_model_parallel_size;
    int groups = tsr_config_num_query_groups(cfg);
    if (cfg->hidden_size % heads != 0)
        return INVALID("--hidden-size %d is not divisible by --num-attention-heads %d; "
                       "the head dimension must be a whole number",
                       cfg->hidden_size, heads);
    if (heads % tp != 0)
        return INVALID("--num-attention-heads %d is not divisible by "
                       "--tensor-model-parallel-size %d; each tensor-parallel rank must hold "
                       "whole heads",
                       heads, tp);
    if (heads % groups != 0)
        return INVALID("--num-attention-heads %d is not divisible by --num-query-groups %d",
                       heads, groups);
    if (groups % tp != 0)
        return INVALID("--num-query-groups %d is not divisible by --tensor-model-parallel-size "
                       "%d; each tensor-parallel rank must hold whole query groups",
                       groups, tp);
    if (cfg->position_embedding_type == TSR_POS_ROPE && (cfg->hidden_size / heads) % 2 != 0)
        return INVALID("rotary position embeddings need an even head dimension, but "
                       "--hidden-size %d / --num-attention-heads %d = %d",
                       cfg->hidden_size, heads, cfg->hidden_size / heads);
    if (tsr_config_ffn_hidden_size(cfg) % tp != 0)
        return INVALID("the MLP width %d (--ffn-hidden-size) is not divisible by "
                       "--tensor-model-parallel-size %d",
                       tsr_config_ffn_hidden_size(cfg), tp);
    if (cfg->max_position_embeddings > 0 && cfg->seq_length > cfg->max_position_embeddings)
        return INVALID("--seq-length %d exceeds --max-position-embeddings %d; raise "
                       "--max-position-embeddings or shorten the sequence",
                       cfg->seq_length, cfg->max_position_embeddings);
    if (cfg->hidden_dropout >= 1.0 || cfg->attention_dropout >= 1.0)
        return INVALID("dropout probabilities must be below 1 (got --hidden-dropout %g, "
                       "--attention-dropout %g)",
                       cfg->hidden_dropout, cfg->attention_dropout);
    return TSR_OK;
}

static tsr_status validate_attention(const tsr_config *cfg)
{
    bool window = false, sparse = false;
    for (int64_t l = 0; l < cfg->num_layers; l++) {
        tsr_attn_mask mask;
        tsr_status st = tsr_config_layer_attention(cfg, l, &mask);
        if (st == TSR_OK)
            st = tsr_attention_mask_check(&mask, cfg->seq_length);
        if (st != TSR_OK)
            return st;
        window |= mask.pattern == TSR_ATTN_WINDOW;
        sparse |= mask.pattern == TSR_ATTN_FIXED || mask.pattern == TSR_ATTN_STRIDED;
    }
    if (cfg->window_size > 0 && !window)
        return INVALID("--window-size %d is set but no layer of --attention-pattern is "
                       "'window'; add window layers or drop --window-size",
                       cfg->window_size);
    if (cfg->sparse_attention != TSR_SPARSE_NONE && !sparse)
        return INVALID("--sparse-attention is set but no layer of --attention-pattern is "
                       "sparse; add sparse layers or drop --sparse-attention");
    if (cfg->reset_position_ids && !cfg->reset_attention_mask)
        return INVALID("--reset-position-ids needs --reset-attention-mask: positions restart "
                       "per document only where attention stays within it (add "
                       "--reset-attention-mask)");
    if (cfg->eod_token >= 0 && !cfg->reset_attention_mask)
        return INVALID("--eod-token %d only serves --reset-attention-mask; add it or drop "
                       "--eod-token",
                       cfg->eod_token);
    return TSR_OK;
}

static tsr_status validate_training(const tsr_config *cfg, int world_size)
{
    int dp = tsr_config_data_parallel_size(cfg, world_size);
    int mbs = cfg->micro_batch_size;
    if (cfg->global_batch_size > 0 && cfg->global_batch_size % ((long long)mbs * dp) != 0)
        return INVALID("--global-batch-size %d is not divisible by --micro-batch-size %d x "
                       "data-parallel size %d = %lld; use a multiple of %lld",
                       cfg->global_batch_size, mbs, dp, (long long)mbs * dp,
                       (long long)mbs * dp);
    if (cfg->min_lr > cfg->lr)
        return INVALID("--min-lr %g is larger than --lr %g; the schedule decays from --lr "
                       "down to --min-lr",
                       cfg->min_lr, cfg->lr);
    if (cfg->adam_beta1 >= 1.0 || cfg->adam_beta2 >= 1.0)
        return INVALID("Adam betas must be below 1 (got --adam-beta1 %g, --adam-beta2 %g)",
                       cfg->adam_beta1, cfg->adam_beta2);
    /* with --train-iters 0 (write the initial checkpoint) and no
     * --lr-decay-iters no learning rate is ever computed: the flags of the
     * run that will --load it are welcome */
    int64_t decay_iters = cfg->lr_decay_iters > 0 ? cfg->lr_decay_iters : cfg->train_iters;
    if (decay_iters > 0 && cfg->lr_warmup_iters > decay_iters)
        return INVALID("--lr-warmup-iters %lld is longer than the decay (%lld iterations); "
                       "shorten the warmup or raise --lr-decay-iters / --train-iters",
                       (long long)cfg->lr_warmup_iters, (long long)decay_iters);
    bool loads = cfg->load != NULL || cfg->pretrained_checkpoint != NULL;
    if (cfg->ckpt_step >= 0 && !loads)
        return INVALID("--ckpt-step %lld is set but --load is not; give --load DIR",
                       (long long)cfg->ckpt_step);
    if (cfg->finetune && !loads)
        return INVALID("--finetune is set but there is nothing to load; give --load DIR or "
                       "--pretrained-checkpoint DIR");
    if (cfg->no_load_optim && !loads)
        return INVALID("--no-load-optim is set but there is nothing to load; give --load DIR "
                       "or --pretrained-checkpoint DIR");
    if (cfg->skip_train && cfg->save != NULL)
        return INVALID("--skip-train evaluates and saves nothing; drop --save %s", cfg->save);
    if (cfg->async_save && cfg->save == NULL)
        return INVALID("--async-save is set but --save is not; give --save DIR");
    if (cfg->save_failure == TSR_SAVE_FAILURE_CONTINUE && cfg->save == NULL)
        return INVALID("--save-failure continue is set but --save is not; give --save DIR");
    if (cfg->save_interval > 0 && cfg->save == NULL)
        return INVALID("--save-interval %lld is set but --save is not; give --save DIR",
                       (long long)cfg->save_interval);
    if (cfg->recompute_granularity == TSR_RECOMPUTE_FULL &&
        cfg->recompute_num_layers > cfg->num_layers)
        return INVALID("--recompute-num-layers %d exceeds --num-layers %d",
                       cfg->recompute_num_layers, cfg->num_layers);
    return TSR_OK;
}

/* --bf16 and --fp16 exclude each other; loss scaling belongs to --fp16 */
static tsr_status validate_precision(const tsr_config *cfg)
{
    if (cfg->bf16 && cfg->fp16)
        return INVALID("--bf16 and --fp16 are both set; pick one 16-bit format");
    const char *scaling = cfg->loss_scale > 0.0           ? "--loss-scale"
                          : cfg->initial_loss_scale > 0.0 ? "--initial-loss-scale"
                          : cfg->min_loss_scale > 0.0     ? "--min-loss-scale"
                          : cfg->loss_scale_window > 0    ? "--loss-scale-window"
                          : cfg->hysteresis > 0           ? "--hysteresis"
                                                          : NULL;
    if (scaling != NULL && !cfg->fp16)
        return INVALID("%s is set but --fp16 is not; loss scaling is for fp16 training (bf16 "
                       "and fp32 need none): add --fp16 or drop %s",
                       scaling, scaling);
    if (cfg->grad_reduce_in_bf16 && !cfg->bf16)
        return INVALID("--grad-reduce-in-bf16 is set but --bf16 is not; bf16 gradient "
                       "reductions belong to bf16 training: add --bf16 or drop the flag");
    if (cfg->fp32_residual_connection && !cfg->bf16 && !cfg->fp16)
        return INVALID("--fp32-residual-connection is set but neither --bf16 nor --fp16 is; "
                       "without them the residual stream is fp32 already: add one or drop "
                       "the flag");
    double initial = cfg->initial_loss_scale > 0.0 ? cfg->initial_loss_scale : 4294967296.0;
    double minimum = cfg->min_loss_scale > 0.0 ? cfg->min_loss_scale : 1.0;
    if (minimum > initial)
        return INVALID("--min-loss-scale %g is above --initial-loss-scale %g; the dynamic "
                       "scale starts at the initial one and never falls below the minimum",
                       minimum, initial);
    return TSR_OK;
}

tsr_status tsr_config_validate(const tsr_config *cfg, int world_size)
{
    if (world_size < 1)
        return INVALID("world size %d is not positive", world_size);
    tsr_status st = validate_parallel(cfg, world_size);
    if (st == TSR_OK)
        st = validate_precision(cfg);
    if (st == TSR_OK)
        st = validate_model(cfg);
    if (st == TSR_OK)
        st = validate_attention(cfg);
    if (st == TSR_OK)
        st = validate_pipeline(cfg);
    if (st == TSR_OK)
        st = validate_training(cfg, world_size);
    if (st == TSR_OK)
        st = tsr_config_validate_lora(cfg);
    if (st == TSR_OK)
        st = tsr_config_validate_moe(cfg);
    return st;
}
