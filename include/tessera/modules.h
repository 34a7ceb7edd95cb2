/*
 * modules.h - the built-in modules (sharding/modules/), Megatron-style
 * parallel forms, for composing model specs.
 *
 * Each kind's config is the struct below it. What each module receives and
 * returns, and so where its communication is, follows from its kind:
 *   embedding   tokens -> local rows; vocab-parallel table, partial rows
 *               summed over tp (all-reduce, or reduce-scatter under SP)
 *   norm        local rows -> local rows; no communication (SP-partial
 *               weight gradients, summed once per iteration)
 *   attention   local rows -> local rows: column-parallel qkv (input
 *               gathered under SP), this rank's heads and query groups,
 *               row-parallel proj (input_is_parallel; output all-reduced,
 *               or reduce-scattered under SP)
 *   mlp         local rows -> local rows: column-parallel fc1 (GELU, or
 *               SwiGLU with the gate/up halves split), row-parallel fc2
 *   residual    x + dropout(children(x)), the children run in sequence
 *   sequence    the children in sequence
 *   lm_head     local rows -> loss: vocab-parallel output layer fused with
 *               the cross-entropy (logits are never gathered)
 */
#ifndef TESSERA_MODULES_H
#define TESSERA_MODULES_H

#include <stdbool.h>

#include "tessera/config.h"
#include "tessera/kernels.h"
#include "tessera/module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Low-rank adapters of a module's linears (LoRA): W + scale * B A, W
 * frozen by the run (--lora-rank). Part of the attention and MLP configs;
 * rank 0 adapts nothing. */
typedef struct tsr_lora_config {
    int64_t rank;
    float scale;      /* alpha / rank */
    double dropout;   /* on the adapter's input */
    unsigned targets; /* TSR_LORA_* bits (tessera/config.h) */
} tsr_lora_config;

extern const tsr_module_kind tsr_module_embedding;
typedef struct tsr_embedding_config {
    bool learned_positions;  /* add embedding.position_embeddings (max_positions rows) */
    int64_t max_positions;
    float init_std;
    double dropout;          /* hidden dropout after the sum (site 0 of layer -1) */
    bool reset_positions;    /* positions restart at each document (the micro batch's
                              * doc_start; --reset-position-ids) */
} tsr_embedding_config;

extern const tsr_module_kind tsr_module_norm;
typedef struct tsr_norm_config {
    tsr_norm_type type; /* LayerNorm (weight, bias) or RMSNorm (weight) */
    float eps;
} tsr_norm_config;

extern const tsr_module_kind tsr_module_attention;
typedef struct tsr_attention_config {
    int64_t heads, query_groups, head_dim;
    bool bias;            /* biases of linear_qkv and linear_proj */
    bool rotary;          /* rotary embedding of q and k (rotate-half) */
    float rotary_base;
    double dropout;       /* attention-probability dropout (site 3) */
    float init_std;       /* linear_qkv */
    float out_init_std;   /* linear_proj */
    /* which keys a query sees: pattern and sizes (its per-query arrays are
     * ignored; documents and prefixes come with the micro batch, in
     * tsr_step_io). Zero: causal. */
    tsr_attn_mask mask;
    bool reset_positions; /* rotary positions restart at each document (doc_start) */
    tsr_lora_config lora; /* adapters of linear_qkv (QKV) and linear_proj (PROJ) */
} tsr_attention_config;

extern const tsr_module_kind tsr_module_mlp;
typedef struct tsr_mlp_config {
    int64_t ffn;          /* intermediate width (of each of gate and up under SwiGLU) */
    bool swiglu;          /* else GELU (tanh form) */
    bool bias;
    float init_std;       /* linear_fc1 */
    float out_init_std;   /* linear_fc2 */
    tsr_lora_config lora; /* adapters of linear_fc1 (FC1) and linear_fc2 (FC2) */
} tsr_mlp_config;

/* A mixture-of-experts MLP (moe.c): a router picks each token's top-k of
 * E experts (each a GELU or SwiGLU MLP of width ffn), their outputs are
 * summed with the router's weights, plus an optional shared expert every
 * token passes through; the router's load-balancing and z-losses are the
 * module's own loss terms. Experts are split over the expert-parallel
 * group (tokens exchanged all-to-all); no tensor parallelism for MoE
 * layers yet. */
extern const tsr_module_kind tsr_module_moe;
typedef struct tsr_moe_config {
    int64_t experts, topk;
    int64_t ffn;           /* each expert's width (of each of gate and up under SwiGLU) */
    int64_t shared_ffn;    /* the shared expert's width; 0: none */
    bool swiglu;
    bool pre_softmax;      /* top-k of softmax(logits), weights not renormalised; else
                            * softmax over the top-k logits */
    tsr_moe_balancing balancing;
    float aux_coeff;       /* E * sum_i f_i P_i, from the probabilities before any dropping */
    float z_coeff;         /* mean over tokens of logsumexp(logits)^2 */
    double capacity;       /* > 0: capacity factor (ceil(factor n k / E) per expert) */
    bool drop_by_position; /* over capacity keep the first in token order, else the most
                            * probable */
    bool pad_to_capacity;  /* every expert's input from every rank is its capacity of rows
                            * (zero rows after the kept ones): fixed exchange sizes */
    bool allgather;        /* expert parallelism gathers every rank's tokens and sums the
                            * outputs back (reduce-scatter), instead of all-to-all */
    bool tensor_parallel;  /* under tp (with SP): experts cut over tp, the layer's rows
                            * gathered (--expert-tensor-parallel-size = tp); else experts
                            * whole on every tp rank, each routing its own rows */
    float init_std;        /* router, fc1 */
    float out_init_std;    /* fc2 */
} tsr_moe_config;

extern const tsr_module_kind tsr_module_residual;
typedef struct tsr_residual_config {
    double dropout; /* on the children's output before the add */
    int site;       /* dropout site within the layer (keys the mask) */
} tsr_residual_config;

extern const tsr_module_kind tsr_module_sequence; /* no config */

extern const tsr_module_kind tsr_module_lm_head;
typedef struct tsr_lm_head_config {
    bool tied;      /* use the embedding's table (TSR_PARAM_TIED_EMBEDDING) */
    float init_std; /* output_layer.weight when untied */
} tsr_lm_head_config;
/* Rows the head holds logits for at a time (the planner prices its
 * products at this many rows). */
#define TSR_LM_HEAD_CHUNK_ROWS 256

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_MODULES_H */
