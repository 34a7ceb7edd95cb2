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
#include "sharding/pipeline_schedule.h"
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

/* A pipeline chunk's boundary buffers for one activation slot. */
typedef struct chunk_io {
    float *x_in;   /* n_loc: the embedding output, or the activation received */
    float *d_recv; /* n_loc: gradient of the chunk's output, received */
    float *d_send; /* n_loc: gradient of the chunk's input, to send */
} chunk_io;

/* The LM head's buffers for one activation slot (last stage). */
typedef struct head_slot {
    float *lnf_full, *lnf_mean, *lnf_rstd, *d_lnf_full;
} head_slot;

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
    layer_weights *w, *g; /* by local layer index */
    layer_acts *acts;     /* slots x local_layers */
    layer_acts *recompute; /* workspace of one recompute group (activation recomputation) */
    int recompute_group;   /* layers per group; 0: no recomputation */
    chunk_io *io;         /* chunks x slots */
    head_slot *heads;     /* slots (last stage) */
    tsr_pp_action *actions; /* this rank's pipeline schedule */
    size_t action_count;
    uint64_t pipeline_wait_ns, pipeline_step_ns; /* summed over the iterations */
    tsr_microbatch *mbs;  /* the iteration's micro batches (pipeline) */
    int32_t *mb_tokens, *mb_targets;
    float *mb_mask;

    /* the slot being computed (select_slot in gpt_step.c) */
    int slot;
    layer_acts *a;        /* acts of the current slot, by local layer index */
    float *emb;           /* n_loc, after embedding dropout */
    float *lnf_full, *lnf_mean, *lnf_rstd, *d_lnf_full;
    /* shared buffers */
    float *emb_full, *norm_local, *qkv, *branch_full, *branch_local;
    float *d_stream, *d_branch_local, *d_branch_full, *d_ln_full, *d_ln_local;
    float *d_att, *d_q, *d_k, *d_v, *d_q_pre, *d_k_pre, *d_qkv, *d_fc1, *d_act;
    float *d_lnf_local;
    float *logits, *row_max, *sumexp, *target_logit, *row_loss, *row_dloss, *ce_pack;
    float *attn_scratch;
};

/* Activation recomputation (--recompute-granularity full): whether local
 * layer j of a chunk of n layers is recomputed, and the group [first,
 * first + count) it is recomputed with. */
bool tsr_gpt_recomputed(const tsr_gpt *g, int j, int n, int *first, int *count);

/* Points the current-slot fields (a, emb, lnf_*, d_lnf_*) at slot s. */
void tsr_gpt_select_slot(tsr_gpt *g, int slot);

/* One chunk of this rank's layers for micro batch mb, in the current slot:
 * forward (embedding first if the chunk has it; final norm and the fused
 * LM head last if it has the head, which also leaves the head's input
 * gradient in the slot), and backward (from the head's gradient or the
 * received one, down to the embedding or the gradient to send). */
tsr_status tsr_gpt_forward_chunk(tsr_gpt *g, const tsr_microbatch *mb, int chunk, bool train,
                                 double *loss);
tsr_status tsr_gpt_backward_chunk(tsr_gpt *g, const tsr_microbatch *mb, int chunk);

void tsr_gpt_set_loss_weights(tsr_gpt *g, const tsr_microbatch *mb, float loss_scale);
/* After a forward_chunk(train = false) of the head chunk: its counts. */
tsr_status tsr_gpt_eval_head_counts(tsr_gpt *g, const tsr_microbatch *mb, tsr_eval_counts *out);

/* The output activation of a chunk in the current slot. */
float *tsr_gpt_chunk_output(tsr_gpt *g, int chunk);

/* Runs one iteration's micro batches through this rank's pipeline
 * schedule (gpt_pipeline.c). */
tsr_status tsr_gpt_pipeline_iteration(tsr_gpt *g, const tsr_microbatch_source *src, int count,
                                      float loss_scale, double *loss_sum);
tsr_status tsr_gpt_pipeline_eval(tsr_gpt *g, const tsr_microbatch *mb, tsr_eval_counts *out);

#endif /* TSR_MODELS_GPT_INTERNAL_H */
