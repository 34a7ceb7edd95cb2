/*
 * config.h - the one configuration struct of a run.
 *
 * Flags are parsed once (launcher/) into a tsr_config; everything below the
 * launcher reads this struct and never argv. Field names follow Megatron-LM
 * flag spellings with dashes turned into underscores. Strings are borrowed
 * (they point into argv or static storage) and never freed.
 *
 * tsr_config_validate() checks every combination that can be known before
 * any allocation or communication, given only the world size.
 */
#ifndef TESSERA_CONFIG_H
#define TESSERA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tsr_norm_type { TSR_NORM_LAYERNORM = 0, TSR_NORM_RMSNORM } tsr_norm_type;

typedef enum tsr_position_type {
    TSR_POS_LEARNED_ABSOLUTE = 0,
    TSR_POS_ROPE
} tsr_position_type;

typedef enum tsr_lr_decay_style {
    TSR_LR_CONSTANT = 0,
    TSR_LR_LINEAR,
    TSR_LR_COSINE
} tsr_lr_decay_style;

typedef enum tsr_recompute_granularity {
    TSR_RECOMPUTE_NONE = 0,
    TSR_RECOMPUTE_FULL,
    TSR_RECOMPUTE_SELECTIVE
} tsr_recompute_granularity;

typedef enum tsr_recompute_method {
    TSR_RECOMPUTE_UNIFORM = 0,
    TSR_RECOMPUTE_BLOCK
} tsr_recompute_method;

typedef enum tsr_bind_policy { TSR_BIND_CORE = 0, TSR_BIND_NUMA, TSR_BIND_NONE } tsr_bind_policy;

typedef enum tsr_backend_choice {
    TSR_BACKEND_AUTO = 0,
    TSR_BACKEND_MPI,
    TSR_BACKEND_NCCL
} tsr_backend_choice;

/* Where the model computes (--device). */
typedef enum tsr_device_choice { TSR_DEVICE_CPU = 0, TSR_DEVICE_CUDA } tsr_device_choice;

typedef enum tsr_model_preset {
    TSR_PRESET_NONE = 0,
    TSR_PRESET_GPT2,
    TSR_PRESET_LLAMA
} tsr_model_preset;

typedef enum tsr_sparse_attention {
    TSR_SPARSE_NONE = 0,
    TSR_SPARSE_FIXED,
    TSR_SPARSE_STRIDED
} tsr_sparse_attention;

/* --moe-router-load-balancing-type */
typedef enum tsr_moe_balancing {
    TSR_MOE_AUX_LOSS = 0, /* Switch/GShard over the micro batch: E * sum_i f_i P_i */
    TSR_MOE_SEQ_AUX_LOSS, /* the same per sequence, averaged over the sequences */
    TSR_MOE_NO_BALANCING
} tsr_moe_balancing;

/* What a failed checkpoint save does to the run (--save-failure). */
typedef enum tsr_save_failure {
    TSR_SAVE_FAILURE_EXIT = 0,
    TSR_SAVE_FAILURE_CONTINUE
} tsr_save_failure;

typedef struct tsr_config {
    /* parallel layout */
    int tensor_model_parallel_size;
    int pipeline_model_parallel_size;
    int context_parallel_size;
    int expert_model_parallel_size;
    int num_layers_per_virtual_pipeline_stage; /* 0: no interleaving */
    int decoder_first_pipeline_num_layers;     /* 0: even split */
    int decoder_last_pipeline_num_layers;      /* 0: even split */
    bool sequence_parallel;
    bool use_distributed_optimizer;
    bool overlap_grad_reduce;
    bool overlap_param_gather;
    /* --grad-reduce-in-bf16 (with --bf16): the data-parallel reductions of
     * the (fp32-accumulated) gradients travel and sum in bf16 */
    bool grad_reduce_in_bf16;
    /* --fp32-residual-connection (with --bf16 / --fp16): the residual
     * stream between layers stays fp32 instead of 16 bits */
    bool fp32_residual_connection;
    int64_t ddp_bucket_size; /* elements; 0: one bucket per parameter group */
    const char *rank_order;  /* e.g. "tp-cp-ep-dp-pp" */

    /* model */
    const char *model_name;   /* --model: a registered model; "gpt" (default) is the GPT
                               * family built from the flags, "gpt2"/"llama" also set the
                               * preset below; others come from --model-plugin */
    const char *model_plugin; /* --model-plugin: shared object registering models; NULL: none */
    tsr_model_preset model;   /* the shape --model gpt2 / llama applies (none for the rest) */
    int num_layers;
    int hidden_size;
    int num_attention_heads;
    int num_query_groups; /* 0: same as heads (no GQA) */
    bool group_query_attention;
    int ffn_hidden_size;  /* 0: 4*hidden (or 8/3*hidden rounded with SwiGLU) */
    int seq_length;
    int max_position_embeddings; /* 0: seq_length */
    int vocab_size;              /* 0: taken from the dataset */
    int make_vocab_size_divisible_by;
    tsr_norm_type normalization;
    double norm_epsilon;
    tsr_position_type position_embedding_type;
    double rotary_base;
    bool swiglu;
    bool disable_bias_linear; /* no biases in linear layers (LLaMA) */
    bool untie_embeddings_and_output_weights;
    double hidden_dropout;
    double attention_dropout;
    double init_method_std;
    /* attention patterns (docs/attention.md); one per layer from
     * attention_pattern, else every layer from window_size / sparse_attention */
    const char *attention_pattern; /* "dense,window", "(dense,window)*6"; NULL: uniform */
    int window_size;               /* keys per query in window layers; 0: none */
    tsr_sparse_attention sparse_attention;
    int sparse_block;
    int sparse_stride;
    bool prefix_lm;            /* bidirectional over the prefix the data defines */
    bool reset_attention_mask; /* documents end at the end-of-document token */
    bool reset_position_ids;   /* positions restart after the end-of-document token */
    int eod_token;             /* that token for file datasets; -1: none given */
    int num_experts; /* 0: dense */
    int moe_router_topk;
    int moe_ffn_hidden_size;          /* each expert's width; 0: --ffn-hidden-size */
    const char *moe_layer_freq;       /* "N" (every N-th layer) or "[1,0,1,0]"; NULL: 1 */
    int moe_shared_expert_intermediate_size; /* a shared expert of this width; 0: none */
    bool moe_router_pre_softmax;      /* top-k of the softmax over all experts */
    tsr_moe_balancing moe_router_load_balancing_type;
    double moe_aux_loss_coeff;
    double moe_z_loss_coeff;
    double moe_expert_capacity_factor; /* > 0: each expert takes at most
                                        * ceil(factor * tokens * k / E) per micro batch */
    int moe_token_drop_policy;         /* 0 probs (keep the most probable), 1 position */
    bool moe_pad_expert_input_to_capacity; /* each expert's input padded to its capacity */
    int expert_tensor_parallel_size;   /* 0: unset (1: experts whole on every tp rank) */
    int moe_token_dispatcher_type;     /* 0 alltoall, 1 allgather */
    /* LoRA (Hu et al. 2021): low-rank adapters on the parallel linears,
     * every other parameter frozen (docs/fine-tuning.md); rank 0: none */
    int lora_rank;
    double lora_alpha;       /* scale alpha / rank; 0: alpha = rank */
    double lora_dropout;     /* on each adapted linear's input, adapter path only */
    const char *lora_target; /* "qkv,proj,fc1,fc2" or a subset; NULL: all four */

    /* training */
    int micro_batch_size;
    int global_batch_size; /* 0: micro batch x data-parallel size */
    int64_t train_iters;
    double lr;
    double min_lr;
    int64_t lr_warmup_iters;
    int64_t lr_decay_iters; /* 0: train_iters */
    tsr_lr_decay_style lr_decay_style;
    double weight_decay;
    double adam_beta1;
    double adam_beta2;
    double adam_eps;
    double clip_grad; /* 0: no clipping */
    int64_t seed;
    bool bf16;
    /* --fp16 and Megatron's loss-scaling flags: parsed and checked; fp16
     * training itself is refused by this build. 0: not given (Megatron's
     * defaults: dynamic scaling from 2^32, minimum 1, window 1000,
     * hysteresis 2) */
    bool fp16;
    double loss_scale; /* a fixed scale; 0: dynamic */
    double initial_loss_scale, min_loss_scale;
    int loss_scale_window, hysteresis;
    int max_nan_iters_in_a_row;
    tsr_recompute_granularity recompute_granularity;
    tsr_recompute_method recompute_method;
    int recompute_num_layers;

    /* data */
    const char *data_path;
    const char *split;
    int64_t eval_interval; /* 0: no evaluation */
    int64_t eval_iters;
    bool skip_train; /* evaluate the (loaded) model once and exit: no training, no save */

    /* checkpoints */
    const char *save;
    const char *load;
    int64_t save_interval;
    int64_t ckpt_step; /* iteration --load reads; -1: the latest */
    const char *pretrained_checkpoint; /* weights to fine-tune when --load holds none */
    bool finetune;      /* load weights only: iteration, optimizer, data start fresh */
    bool no_load_optim; /* fresh Adam moments and step count */
    bool no_load_rng;   /* accepted: checkpoints hold no random state */
    tsr_save_failure save_failure;
    bool async_save; /* write checkpoints in a background thread */

    /* stopping early, with a checkpoint (Megatron's --exit-* flags) */
    int64_t exit_interval;     /* 0: never */
    double exit_duration_mins; /* 0: no limit */
    bool exit_signal_handler;  /* SIGTERM / SIGUSR1 stop the run at the next iteration */

    /* logging and runtime */
    int64_t log_interval;
    const char *metrics_file;
    const char *cluster;      /* --cluster: predict the iteration time on this machine */
    const char *watchdog_dir; /* hang reports; NULL: the working directory */
    int log_level; /* tsr_log_level */
    double distributed_timeout_minutes;
    tsr_bind_policy bind;
    tsr_backend_choice backend;
    tsr_device_choice device;
} tsr_config;

/* Fills every field with its default (Megatron's where one exists). */
void tsr_config_defaults(tsr_config *cfg);

/* Copies the preset's model shape (cfg->model) into the config. Call it
 * before parsing the remaining flags so that explicit flags win. */
void tsr_config_apply_preset(tsr_config *cfg);

/* Data-parallel size implied by the world size and the model-parallel sizes
 * (0 if it does not divide). */
int tsr_config_data_parallel_size(const tsr_config *cfg, int world_size);

/* Effective values of fields whose 0 means "derive it". */
int tsr_config_ffn_hidden_size(const tsr_config *cfg);
int tsr_config_num_query_groups(const tsr_config *cfg);
int tsr_config_global_batch_size(const tsr_config *cfg, int world_size);
/* Micro batches per iteration on one data-parallel rank (the global batch
 * over micro batch x dp; a valid config divides it). */
int tsr_config_microbatches_per_rank(const tsr_config *cfg, int world_size);

/* Megatron's padding: the smallest multiple of
 * make_vocab_size_divisible_by x tensor_model_parallel_size >= vocab. */
int tsr_config_padded_vocab_size(const tsr_config *cfg, int vocab_size);

/* The attention of layer `layer`: its pattern and sizes (the per-query
 * arrays are NULL). Fails with a message naming the flag when
 * --attention-pattern does not parse or does not cover the layers. */
struct tsr_attn_mask;
tsr_status tsr_config_layer_attention(const tsr_config *cfg, int64_t layer,
                                      struct tsr_attn_mask *out);
/* The score elements the attention kernels compute for one (sample, head)
 * in layers [first, first + count) at t tokens: each layer's
 * tsr_attention_computed_elements, counted once for a run of layers that
 * share a pattern (the count walks every tile); a layer whose pattern
 * does not parse adds nothing. */
double tsr_config_attention_elements(const tsr_config *cfg, int64_t first, int64_t count,
                                     int64_t t);

/* Whether layer `layer` is a mixture-of-experts layer (--num-experts with
 * --moe-layer-freq); false for every layer of a dense model. */
bool tsr_config_layer_is_moe(const tsr_config *cfg, int64_t layer);
/* The MoE flags' combinations (part of tsr_config_validate). */
tsr_status tsr_config_validate_moe(const tsr_config *cfg);
/* Each expert's width (--moe-ffn-hidden-size, else the dense MLP's). */
int tsr_config_moe_ffn_hidden_size(const tsr_config *cfg);

/* The linears LoRA adapts (tsr_config_lora_targets). */
enum {
    TSR_LORA_QKV = 1u << 0,  /* attention's linear_qkv (column-parallel) */
    TSR_LORA_PROJ = 1u << 1, /* attention's linear_proj (row-parallel) */
    TSR_LORA_FC1 = 1u << 2,  /* the MLP's linear_fc1 (column-parallel) */
    TSR_LORA_FC2 = 1u << 3   /* the MLP's linear_fc2 (row-parallel) */
};
/* --lora-target as TSR_LORA_* bits (all four when not given); 0 without
 * --lora-rank. TSR_ERR_INVALID_ARG naming the word it does not know. */
tsr_status tsr_config_lora_targets(const tsr_config *cfg, unsigned *targets);
/* The bits as --lora-target spells them, in the order qkv,proj,fc1,fc2. */
void tsr_config_lora_target_text(unsigned targets, char *buf, size_t len);
/* alpha / rank (0 without LoRA). */
double tsr_config_lora_scale(const tsr_config *cfg);
/* The LoRA flags' combinations (part of tsr_config_validate). */
tsr_status tsr_config_validate_lora(const tsr_config *cfg);

/* Checks every constraint that can be known from the config and the world
 * size alone. On failure returns TSR_ERR_INVALID_ARG with a message naming
 * the flags involved and what to change. */
tsr_status tsr_config_validate(const tsr_config *cfg, int world_size);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_CONFIG_H */
