/*
 * module.h - the model API: a module declares its parameters and buffers
 * and provides forward and backward; the runtime decides what this rank
 * holds, where the memory comes from and where the communication goes.
 *
 * A module kind is a table of functions (tsr_module_kind). The builder
 * (sharding/) calls declare() once per instance at start-up with the
 * instance's sizes (tsr_module_info): the module fills a tsr_module_decl
 * with its parameters (global shape, split, initialisation, flags) and its
 * buffers (rows, local columns, saved or scratch). From those declarations
 * alone the builder derives this rank's shapes, the checkpoint tensors,
 * the optimizer spans, the gradient reductions, the memory plan and the
 * carving. Nothing is allocated inside a step.
 *
 * Declarations are slots: a module declares every parameter and buffer it
 * may have, in a fixed order (an enum in its file gives the indices), and
 * passes enabled = false for the ones this configuration does not have (a
 * bias under --disable-bias-linear). A disabled slot has no memory and its
 * pointer is NULL; kernels take NULL for a missing bias.
 *
 * At run time forward() and backward() get a tsr_module_run: this
 * instance's parameter, gradient and buffer pointers (saved buffers of the
 * micro batch being computed), the micro batch, and the tensor-parallel
 * group through the functions below. The rules, as in llm.c:
 *   - forward writes out (rows x out cols); in is read-only.
 *   - backward ACCUMULATES (+=) into din and into every parameter
 *     gradient; zeroing is the runtime's job. dout is read-only, and
 *     differs from din unless the declaration says in_place_grad. `out`
 *     is the forward output when its holder kept it, else NULL: a module
 *     that needs its output in backward saves what it needs itself.
 *   - children of a composite are declared in order, child i taking the
 *     output shape of child i-1 as its input (child 0: the composite's).
 *   - scratch buffers hold nothing between calls; saved buffers hold what
 *     forward left for backward of the same micro batch.
 * Row counts: "tokens" rows are the whole micro batch (B*T); "local" rows
 * are this rank's part of the residual stream (B*T/tp under sequence
 * parallelism, else B*T).
 *
 * Composite modules are specs with children (spec.h): their declare() sees
 * the children's declarations (info->children) and declares the buffers
 * between them; forward and backward call tsr_module_child_forward() and
 * tsr_module_child_backward().
 */
#ifndef TESSERA_MODULE_H
#define TESSERA_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/call_site.h"
#include "tessera/config.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_MODULE_MAX_PARAMS 16
#define TSR_MODULE_MAX_BUFFERS 48
#define TSR_MODULE_MAX_CHILDREN 8

/* How a parameter is cut across the tensor-parallel group. */
typedef enum tsr_param_split {
    TSR_PARAM_SPLIT_NONE = 0, /* replicated: every tp rank holds all of it */
    TSR_PARAM_SPLIT_ROWS,     /* output features (column-parallel weight, its bias) */
    TSR_PARAM_SPLIT_COLS,     /* input features (row-parallel weight) */
    TSR_PARAM_SPLIT_GATE_UP,  /* rows in two halves (SwiGLU gate | up), each split */
    TSR_PARAM_SPLIT_VOCAB,    /* vocabulary rows: padded (Megatron), split, stored unpadded */
    /* stacked experts' blocks (tsr_decl_experts) split over the
     * expert-parallel group: rank r holds experts [r E/ep, (r+1) E/ep),
     * gradients summed over the expert-data-parallel group, not dp */
    TSR_PARAM_SPLIT_EXPERTS,
    TSR_PARAM_SPLIT_COUNT
} tsr_param_split;

typedef enum tsr_param_init {
    TSR_INIT_NORMAL = 0, /* normal(0, value) from the RNG keyed by (seed, name, index) */
    TSR_INIT_CONSTANT    /* every element = value */
} tsr_param_init;

/* Parameter flags. */
enum {
    TSR_PARAM_DECAY = 1u << 0,  /* weight decay applies (weights; not biases or norms) */
    TSR_PARAM_FROZEN = 1u << 1, /* never updated: no gradient, no optimizer state */
    /* replicated across tp but each rank sees only its sequence rows under
     * sequence parallelism: the gradient is summed over tp once per
     * iteration (norm weights, learned positions) */
    TSR_PARAM_SP_PARTIAL = 1u << 2,
    /* the embedding's vocabulary table, shared: a head declares its weight
     * with this flag to use the model's embedding table (tied output layer);
     * on another pipeline stage the builder gives it a copy whose gradient
     * is summed with the original's over the embedding group */
    TSR_PARAM_TIED_EMBEDDING = 1u << 4,
    /* a low-rank adapter of another parameter of the module (LoRA;
     * tsr_decl_adapter): when the run trains adapters only (--lora-rank),
     * every parameter without this flag is frozen */
    TSR_PARAM_ADAPTER = 1u << 5,
    /* no module reads it in fp32: only kernels that read a weight's 16-bit
     * copy under --bf16 / --fp16 do (the weight of tsr_linear_* products,
     * the table of tsr_embedding_forward), so a rank then holds no fp32
     * values of it (the fp32 master is the optimizer's, sharded under the
     * distributed optimizer), and any other read of it faults. Without the
     * flag a parameter keeps an fp32 view (of its 16-bit value) beside its
     * copy. */
    TSR_PARAM_NO_FP32_READ = 1u << 6
};

/* Which half of a low-rank adapter W + scale * up @ down a parameter is. */
typedef enum tsr_adapter_role {
    TSR_ADAPTER_NONE = 0,
    TSR_ADAPTER_DOWN, /* (rank, in): LoRA's A */
    TSR_ADAPTER_UP    /* (out, rank): LoRA's B */
} tsr_adapter_role;

typedef struct tsr_param_decl {
    bool enabled;
    char suffix[48];       /* name under the module's prefix: "linear_qkv.weight" */
    int64_t rows, cols;    /* global shape; cols = 1 for vectors (padded vocab rows) */
    tsr_param_split split;
    tsr_param_init init;
    float init_value;      /* std for TSR_INIT_NORMAL, the constant otherwise */
    unsigned flags;
    /* TSR_PARAM_ADAPTER: the slot of the weight it adapts, its role and
     * the scale of up @ down (what merging adds to that weight) */
    int adapts;
    tsr_adapter_role adapter_role;
    float adapter_scale;
    int64_t experts; /* > 1: rows stack that many experts' blocks (tsr_decl_experts) */
    /* TSR_PARAM_SPLIT_EXPERTS: how each expert's block is cut over tp
     * (NONE: whole on every tp rank; ROWS, GATE_UP or COLS) */
    tsr_param_split expert_split;
} tsr_param_decl;

typedef enum tsr_buffer_rows {
    TSR_ROWS_TOKENS = 0, /* B*T rows */
    TSR_ROWS_LOCAL,      /* B*T/tp under sequence parallelism, else B*T */
    TSR_ROWS_FIXED       /* exactly cols floats (one row) */
} tsr_buffer_rows;

typedef enum tsr_buffer_life {
    TSR_BUFFER_SCRATCH = 0, /* valid during one forward or backward call */
    TSR_BUFFER_SAVED        /* from forward to backward of the same micro batch */
} tsr_buffer_life;

typedef struct tsr_buffer_decl {
    bool enabled;
    char name[32];
    tsr_buffer_rows rows;
    int64_t cols; /* local columns (this rank's heads, MLP columns, ...) */
    tsr_buffer_life life;
    /* a saved activation (tsr_decl_activation): held in 16 bits between
     * forward and backward under --bf16 / --fp16 */
    bool activation;
} tsr_buffer_decl;

/* What an instance declared (filled by its kind's declare()). */
typedef struct tsr_module_decl {
    tsr_param_decl params[TSR_MODULE_MAX_PARAMS];
    int param_count;
    tsr_buffer_decl buffers[TSR_MODULE_MAX_BUFFERS];
    int buffer_count;
    tsr_buffer_rows out_rows; /* the output: rows and columns */
    int64_t out_cols;
    bool keeps_input;         /* backward reads `in`: the caller keeps it saved */
    /* backward may be called with din == dout: the buffer holds dout on
     * entry and the input gradient (not added to anything) on return */
    bool in_place_grad;
    /* forward handles io->decode_position >= 0 (one token per sample; rows
     * are B): what `tessera generate` needs of every module. Row-wise
     * modules get it for free; one that mixes positions keeps what it
     * needs of earlier ones in its saved buffers */
    bool decodes;
} tsr_module_decl;

/* Adds parameter slot decl->param_count (returns its index). */
int tsr_decl_param(tsr_module_decl *decl, bool enabled, const char *suffix, int64_t rows,
                   int64_t cols, tsr_param_split split, tsr_param_init init, float init_value,
                   unsigned flags);
/* Marks parameter slot `slot` as the `role` half of a low-rank adapter of
 * the weight in slot `base`: base + scale * up @ down is the weight the
 * module computes with (TSR_PARAM_ADAPTER; tessera convert --merge-lora
 * folds it in). The up half has the base's rows and split, the down half
 * its columns and split; each half's other dimension is the rank. */
void tsr_decl_adapter(tsr_module_decl *decl, int slot, int base, tsr_adapter_role role,
                      float scale);
/* Marks parameter slot `slot` as `experts` experts' weights stacked by
 * rows (each rows / experts of them): checkpoints store it at
 * (experts, rows / experts, cols), the shape Megatron's experts have. */
void tsr_decl_experts(tsr_module_decl *decl, int slot, int64_t experts);
/* Cuts each expert of stacked slot `slot` over the tensor-parallel group
 * like a column-parallel (ROWS, or GATE_UP for a SwiGLU gate | up pair)
 * or row-parallel (COLS) weight: experts split by tensor parallelism. */
void tsr_decl_expert_split(tsr_module_decl *decl, int slot, tsr_param_split split);
/* Adds buffer slot decl->buffer_count (returns its index). */
int tsr_decl_buffer(tsr_module_decl *decl, bool enabled, const char *name, tsr_buffer_rows rows,
                    int64_t cols, tsr_buffer_life life);
/* Marks saved buffer slot `slot` as an activation. Under --bf16 (--fp16)
 * the runtime holds it in bf16 (fp16) from the end of the module's forward
 * to its backward, as Megatron holds activations, and backward reads the
 * rounded values; during forward it is fp32. A saved buffer not marked
 * stays fp32: statistics (a norm's rstd, attention's log-sum-exp), indices
 * and counts, gradients computed ahead. A saved value that other saved
 * values are computed from is rounded first (tsr_module_round_activation)
 * so that backward sees it exactly as forward did. */
void tsr_decl_activation(tsr_module_decl *decl, int slot);

/* What a child declared, as its parent's declare() sees it. */
typedef struct tsr_child_summary {
    tsr_buffer_rows out_rows;
    int64_t out_cols;
    bool keeps_input;
    bool in_place_grad;
} tsr_child_summary;

/* An instance's sizes, fixed at build time. */
typedef struct tsr_module_info {
    const void *config;        /* the spec's config (the kind's own struct) */
    const tsr_config *run;     /* the whole run's flags (dropout, seed, ...) */
    int64_t layer;             /* model layer; -1 for the embedding, num_layers after */
    int64_t num_layers;
    int64_t micro_batch, seq, local_seq; /* B, T, and T/tp under sequence parallelism */
    int64_t hidden;            /* C, the residual stream width */
    int64_t in_cols;           /* width of this instance's input */
    tsr_buffer_rows in_rows;
    int tp_size, tp_rank;
    int ep_size, ep_rank;      /* expert parallelism (TSR_PARAM_SPLIT_EXPERTS) */
    bool sequence_parallel;
    int64_t vocab, padded_vocab; /* of the dataset; rows of the embedding table */
    int64_t local_vocab, vocab_start; /* this rank's vocabulary rows */
    int child_count;
    tsr_child_summary children[TSR_MODULE_MAX_CHILDREN];
} tsr_module_info;

/* Rows that experts computed, against the rows an even routing would have
 * given them: a rank's busiest share sets an expert-parallel step's pace. */
typedef struct tsr_expert_load {
    double rows;      /* rows this rank's experts computed */
    double even_rows; /* what they would compute if every expert took as many */
} tsr_expert_load;

/* The micro batch and the loss rows, shared by every module of a step. */
typedef struct tsr_step_io {
    const int32_t *tokens;  /* (B, T) */
    const int32_t *targets; /* (B, T); NULL when only logits are asked for */
    const float *row_weight; /* (B*T): d loss / d row loss (mask / tokens x scale) */
    float *row_loss;        /* (B*T), written by the head */
    float *row_correct;     /* (B*T), 1 where the argmax is the target (head) */
    int64_t first_sample;   /* global index of sample 0 (keys dropout) */
    int64_t iteration;      /* keys dropout */
    /* attention across documents and prefixes (tsr_attn_mask); (B, T) or NULL */
    const int32_t *doc_start, *prefix_lo, *prefix_hi;
    /* generation (tessera generate): >= 0 when this forward is one token per
     * sample at this position (tokens (B), rows B; the module's saved
     * buffers of earlier positions are still there: a key/value cache);
     * -1 for a whole sequence */
    int64_t decode_position;
    /* the weight of this micro batch's loss in the iteration's (1 / micro
     * batches): a module's own loss terms (MoE balancing) take it in
     * backward, as the head's rows do through row_weight */
    float loss_scale;
    /* a module adds the value of its own loss terms of the micro batch
     * here in a training forward (NULL when it must not: evaluation,
     * recomputation) */
    double *aux_loss;
    /* a module that runs experts adds their rows here in a training
     * forward (NULL as for aux_loss) */
    tsr_expert_load *expert_load;
} tsr_step_io;

struct tsr_module_node;
struct tsr_module_exec;

/* One call's view of an instance. */
typedef struct tsr_module_run {
    const tsr_module_info *info;
    float *const *params;  /* by declaration index; NULL: disabled */
    float *const *grads;   /* NULL: disabled or frozen */
    float *const *buffers; /* by declaration index; saved ones of this micro batch */
    const tsr_step_io *io;
    bool train;            /* forward in training (dropout; fused head gradient) */
    const struct tsr_module_node *node;
    struct tsr_module_exec *exec;
} tsr_module_run;

typedef struct tsr_module_kind {
    const char *name;
    /* Checks the input shape (info->in_rows, in_cols) and declares; an
     * error says what is wrong (a configuration error: exit 2). */
    tsr_status (*declare)(const tsr_module_info *info, tsr_module_decl *decl);
    tsr_status (*forward)(const tsr_module_run *run, const float *in, float *out);
    tsr_status (*backward)(const tsr_module_run *run, const float *in, const float *out,
                           const float *dout, float *din);
    /* Heads only (NULL elsewhere): this rank's logits of the real
     * vocabulary for rows of `in`, (B*T, *count). */
    tsr_status (*logits)(const tsr_module_run *run, const float *in, float *logits,
                         int64_t *count);
} tsr_module_kind;

/* ---- what a module may do at run time ----------------------------------- */

/* Children of a composite: forward/backward of child i (run->node's). */
tsr_status tsr_module_child_forward(const tsr_module_run *run, int child, const float *in,
                                    float *out);
tsr_status tsr_module_child_backward(const tsr_module_run *run, int child, const float *in,
                                     const float *out, const float *dout, float *din);

/* Rows of a buffer of the given kind for this instance. */
int64_t tsr_module_rows(const tsr_module_run *run, tsr_buffer_rows rows);
/* Rounds x (n values) in place to the precision saved activations are
 * held in: bf16 under --bf16, fp16 under --fp16, nothing in fp32. For a
 * saved activation that other saved values are computed from: rounded
 * before they are computed, backward reads exactly what forward used
 * (attention's q, k and v, from which its log-sum-exp comes). */
void tsr_module_round_activation(const tsr_module_run *run, float *x, int64_t n);

/* The tensor-parallel group (no-ops on one rank). x (n) summed or maxed in
 * place over tp. Macros, so that the watchdog's ring of recent calls names
 * the module's code that made the call (tessera/call_site.h). */
tsr_status tsr_module_tp_sum_at(tsr_call_site site, const tsr_module_run *run, float *x,
                                int64_t n);
#define tsr_module_tp_sum(...) tsr_module_tp_sum_at(TSR_HERE, __VA_ARGS__)
tsr_status tsr_module_tp_max_at(tsr_call_site site, const tsr_module_run *run, float *x,
                                int64_t n);
#define tsr_module_tp_max(...) tsr_module_tp_max_at(TSR_HERE, __VA_ARGS__)
/* Sequence parallelism: local (B, T/tp, cols) of every rank -> full
 * (B, T, cols); and full partial sums -> this rank's local rows of the sum. */
tsr_status tsr_module_tp_gather_rows_at(tsr_call_site site, const tsr_module_run *run,
                                        float *full, const float *local, int64_t cols);
#define tsr_module_tp_gather_rows(...) tsr_module_tp_gather_rows_at(TSR_HERE, __VA_ARGS__)
tsr_status tsr_module_tp_scatter_rows_at(tsr_call_site site, const tsr_module_run *run,
                                         float *local, const float *full, int64_t cols);
#define tsr_module_tp_scatter_rows(...) tsr_module_tp_scatter_rows_at(TSR_HERE, __VA_ARGS__)

/* The expert-parallel group (--expert-model-parallel-size; copies on one
 * rank). alltoall: `count` floats from send + p count to rank p, from
 * rank p to recv + p count. alltoallv: send_rows[p] rows of `cols` floats
 * go to rank p, recv_rows[p] come from rank p, each packed in rank order
 * (row counts are floats as modules keep them, exact below 2^24). */
tsr_status tsr_module_ep_alltoall_at(tsr_call_site site, const tsr_module_run *run,
                                     const float *send, float *recv, int64_t count);
#define tsr_module_ep_alltoall(...) tsr_module_ep_alltoall_at(TSR_HERE, __VA_ARGS__)
tsr_status tsr_module_ep_alltoallv_at(tsr_call_site site, const tsr_module_run *run,
                                      const float *send, const float *send_rows, float *recv,
                                      const float *recv_rows, int64_t cols);
#define tsr_module_ep_alltoallv(...) tsr_module_ep_alltoallv_at(TSR_HERE, __VA_ARGS__)
/* allgather: count floats of every rank into recv, rank p's at p count;
 * reduce_scatter: send (ep x count) summed over the group, block ep_rank
 * of the sum into recv (count). */
tsr_status tsr_module_ep_allgather_at(tsr_call_site site, const tsr_module_run *run,
                                      const float *send, float *recv, int64_t count);
#define tsr_module_ep_allgather(...) tsr_module_ep_allgather_at(TSR_HERE, __VA_ARGS__)
tsr_status tsr_module_ep_reduce_scatter_at(tsr_call_site site, const tsr_module_run *run,
                                           const float *send, float *recv, int64_t count);
#define tsr_module_ep_reduce_scatter(...) tsr_module_ep_reduce_scatter_at(TSR_HERE, __VA_ARGS__)

/* The dropout mask of `site` (0..3: the key is layer x 4 + site, so a
 * larger site would draw another layer's mask) in this instance's layer:
 * keyed by (seed, layer, site, iteration) and global positions, so every
 * layout draws the same mask. local_rows: the mask covers this rank's
 * sequence rows (residual stream) rather than the whole sequence. */
struct tsr_dropout;
void tsr_module_dropout(const tsr_module_run *run, int site, double p, bool local_rows,
                        struct tsr_dropout *out);
/* The same with keys of their own: `purpose` (a string naming the use,
 * "lora", say) and site (any value) in this instance's layer, so that a
 * module's extra dropouts draw masks unrelated to the layer's four. */
void tsr_module_dropout_keyed(const tsr_module_run *run, const char *purpose, int site, double p,
                              bool local_rows, struct tsr_dropout *out);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_MODULE_H */
