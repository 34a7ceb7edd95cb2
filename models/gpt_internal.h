/*
 * gpt_internal.h - the GPT model's private state, shared by gpt.c
 * (memory, creation) and gpt_step.c (forward, backward, evaluation).
 */
#ifndef TSR_MODELS_GPT_INTERNAL_H
#define TSR_MODELS_GPT_INTERNAL_H

#include "gpt.h"

typedef struct layer_weights {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} layer_weights;

typedef struct layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd;
    float *q, *k, *v, *att, *lse;
    float *res1;
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1, *act;
    float *res2;
} layer_acts;

struct tsr_gpt {
    tsr_config cfg;
    tsr_gpt_dims d;
    tsr_gpt_param *table;
    size_t param_count_entries;
    size_t numel;
    float *params, *grads;
    tsr_param_span *spans;
    tsr_tensor_desc *tensors;
    size_t span_count;

    float *wte, *wpe, *lnf_w, *lnf_b, *head_w;
    float *g_wte, *g_wpe, *g_lnf_w, *g_lnf_b, *g_head_w;
    layer_weights *w, *g;
    layer_acts *a;

    float *emb;                         /* (N, C) after embedding dropout */
    float *lnf, *lnf_mean, *lnf_rstd;   /* final norm */
    /* shared buffers */
    float *qkv, *branch;                /* forward scratch */
    float *d_stream, *d_branch, *d_ln, *d_att, *d_q, *d_k, *d_v, *d_q_pre, *d_k_pre;
    float *d_qkv, *d_fc1, *d_act, *d_lnf;
    float *logits, *row_max, *sumexp, *target_logit, *row_loss, *row_dloss;
    float *attn_scratch;
};

#endif /* TSR_MODELS_GPT_INTERNAL_H */
