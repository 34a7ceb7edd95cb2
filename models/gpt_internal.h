/*
 * gpt_internal.h - the GPT model's private state, shared by gpt.c
 * (memory, creation) and gpt_step.c (forward, backward, evaluation).
 *
 * Row counts: n_tok = B*T rows enter attention and the MLP (the whole
 * sequence); n_loc = B*T/tp rows make up the residual stream under
 * sequence parallelism (n_loc = n_tok otherwise). Buffers named *_full
 * hold n_tok rows, *_local n_loc rows; without sequence parallelism the
 * two names point at the same memory.
 */
#ifndef TSR_MODELS_GPT_INTERNAL_H
#define TSR_MODELS_GPT_INTERNAL_H

#include "gpt.h"
#include "sharding/tensor_parallel.h"

typedef struct layer_weights {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} layer_weights;

typedef struct layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* ln1: n_tok rows (gathered); stats n_loc */
    float *q, *k, *v, *att, *lse;     /* this rank's heads, n_tok rows */
    float *res1;                      /* n_loc */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1, *act;                 /* this rank's MLP columns, n_tok rows */
    float *res2;                      /* n_loc */
} layer_acts;

struct tsr_gpt {
    tsr_config cfg;
    tsr_gpt_dims d;
    tsr_tp tp;
    tsr_gpt_param *table;
    size_t param_count_entries;
    size_t numel;
    float *params, *grads;
    tsr_param_span *spans;
    size_t span_count;
    tsr_tensor_desc *tensors;
    size_t tensor_count;

    float *wte, *wpe, *lnf_w, *lnf_b, *head_w;
    float *g_wte, *g_wpe, *g_lnf_w, *g_lnf_b, *g_head_w;
    layer_weights *w, *g;
    layer_acts *a;

    float *emb;                       /* n_loc, after embedding dropout */
    float *lnf_full, *lnf_mean, *lnf_rstd;
    /* shared buffers */
    float *emb_full, *norm_local, *qkv, *branch_full, *branch_local;
    float *d_stream, *d_branch_local, *d_branch_full, *d_ln_full, *d_ln_local;
    float *d_att, *d_q, *d_k, *d_v, *d_q_pre, *d_k_pre, *d_qkv, *d_fc1, *d_act;
    float *d_lnf_full, *d_lnf_local;
    float *logits, *row_max, *sumexp, *target_logit, *row_loss, *row_dloss, *ce_pack;
    float *attn_scratch;
};

#endif /* TSR_MODELS_GPT_INTERNAL_H */
