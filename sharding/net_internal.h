/*
 * net_internal.h - the built model's private state, shared by net_dims.c,
 * net_build.c (declaration, checks), net_queries.c, net_tables.c,
 * net_memory.c (plan and carving), net_step.c (forward, backward,
 * evaluation), net_pipeline.c and expert_parallel.c.
 *
 * The model is a forest of module nodes, one tree per unit: the embedding,
 * each layer, the final norm and the head. Every unit is declared on every
 * rank (so every rank knows every parameter's name for checkpoints), but
 * only this rank's units get memory.
 *
 * Memory of a local unit: its saved buffers form one block per activation
 * slot (or, for a recomputed layer, one block of the shared recompute
 * workspace); its scratch buffers live in one scratch region shared by
 * all units, a child's after its ancestors' (they are alive together),
 * siblings overlapping (they are not).
 */
#ifndef TSR_SHARDING_NET_INTERNAL_H
#define TSR_SHARDING_NET_INTERNAL_H

#include "sharding/net.h"
#include "sharding/pipeline_schedule.h"
#include "sharding/tensor_parallel.h"

#define TSR_NET_NO_PARAM ((size_t)-1)

/* returns the status of a call that failed */
#define TRY(call)                                                                             \
    do {                                                                                     \
        tsr_status try_status_ = (call);                                                     \
        if (try_status_ != TSR_OK)                                                           \
            return try_status_;                                                              \
    } while (0)

typedef struct tsr_module_node {
    const tsr_spec *spec;
    tsr_module_info info;
    tsr_module_decl decl;
    int unit;
    int child[TSR_MODULE_MAX_CHILDREN];
    size_t param_entry[TSR_MODULE_MAX_PARAMS]; /* into net->table; TSR_NET_NO_PARAM */
    size_t buffer_offset[TSR_MODULE_MAX_BUFFERS]; /* floats: saved in the unit block, scratch in the region */
    size_t scratch_floats; /* this node's own scratch */
    float *params[TSR_MODULE_MAX_PARAMS], *grads[TSR_MODULE_MAX_PARAMS];
} tsr_module_node;

/* How saved activations wait for backward: fp32, or rounded to 16 bits
 * (Megatron's --bf16 / --fp16 activations). */
typedef enum tsr_net_held {
    TSR_NET_HELD_FP32 = 0,
    TSR_NET_HELD_BF16,
    TSR_NET_HELD_FP16
} tsr_net_held;

typedef enum unit_role { UNIT_EMBEDDING = 0, UNIT_LAYER, UNIT_FINAL_NORM, UNIT_HEAD } unit_role;

typedef struct tsr_net_unit {
    unit_role role;
    int64_t layer; /* model layer (UNIT_LAYER) */
    int root;      /* node index */
    bool local;
    int64_t local_index;  /* local layer index (UNIT_LAYER, local) */
    size_t saved_floats;  /* its saved block: activations first, then the fp32-only rest */
    size_t activation_floats; /* the activations' part (tsr_decl_activation) */
    size_t scratch_floats; /* deepest path of scratch in its tree */
    size_t slot_offset;   /* floats into a slot: its saved block (unless recomputed) */
    size_t out_offset;    /* floats into a slot: a layer's output */
    bool recomputed;
    int recompute_index;  /* position in the recompute group */
    size_t first_param;   /* lowest local parameter offset (grads ready) */
} tsr_net_unit;

/* What a step's modules share: where the current micro batch's saved
 * blocks are, the scratch region, the micro batch. */
struct tsr_module_exec {
    tsr_net *net;
    float *unit_saved; /* the saved block of the unit being run */
    tsr_step_io io;
    bool train;
};

typedef struct chunk_io {
    float *x_in;   /* local rows: the embedding output or the activation received, kept as
                    * the residual stream is (tsr_net_stream_held) */
    float *d_recv; /* gradient of the chunk's output, received */
    float *d_send; /* gradient of the chunk's input, to send */
} chunk_io;

/* The rows experts computed in the training forwards: the run's totals,
 * and each MoE layer's call of the last TSR_NET_EXPERT_LOG ones (a ring;
 * the ranks of an expert-parallel group make the same calls in the same
 * order, so entry i is the same exchange on each). */
#define TSR_NET_EXPERT_LOG 4096
typedef struct tsr_net_expert_log {
    tsr_expert_load total;
    int64_t calls;
    double rows[TSR_NET_EXPERT_LOG], even_rows[TSR_NET_EXPERT_LOG];
} tsr_net_expert_log;

/* After a unit's training forward: logs its experts' rows if it has any
 * (its even share grew from even_before). */
void tsr_net_expert_log_note(tsr_net *net, double rows_before, double even_before);

struct tsr_net {
    tsr_config cfg;
    tsr_net_dims d;
    const tsr_model_spec *spec;
    tsr_tp tp;

    tsr_module_node *nodes; /* heap, from build */
    int node_count, node_capacity;
    tsr_net_unit *units;    /* embedding, layers..., final norm, head */
    int unit_count;
    tsr_net_param *table;   /* heap */
    size_t param_count_entries, table_capacity;
    size_t numel;           /* trainable floats (params and grads) */
    size_t expert_numel;    /* of them, the expert region first (ep > 1; else 0) */
    size_t frozen_numel;    /* frozen floats (no gradient, no optimizer state) */
    tsr_param_span *spans;  /* heap */
    size_t span_count;
    tsr_tensor_desc *tensors; /* heap: each entry's blocks (tsr_net_param.first_tensor) */
    size_t tensor_count;
    size_t embedding_entry;   /* the vocabulary table of the embedding, or NO_PARAM */
    bool tied;                /* the head uses the embedding table */

    /* sizes (from build) */
    size_t slot_floats;       /* one activation slot */
    size_t recompute_block, recompute_group;
    size_t module_scratch;    /* the deepest scratch path of any local unit */
    bool norm_out_saved;      /* the final norm's output is kept for the head */
    /* saved activations between forward and backward (--bf16, --fp16) */
    tsr_net_held held;
    size_t staging_floats; /* the largest held unit's saved block, fp32 */

    /* --bf16 / --fp16 training: the trainable parameters' values live in
     * the trainer (its fp32 master and 16-bit copies); params is their fp32
     * view, backed (params_block) only for the spans not read by products
     * alone, and init writes the initial values into grads instead */
    bool weights16;
    tsr_sparse_block params_block;

    /* memory (from carve) */
    float *params, *grads, *frozen;
    float *slots_base;        /* slots x slot_floats */
    float *recompute_base;    /* recompute_group x recompute_block */
    float *staging;           /* the held unit being run: its saved block in fp32 */
    float *stream_work[2];    /* the residual stream in fp32 when it is kept in 16 bits */
    float *scratch;           /* module scratch region */
    chunk_io *io;             /* slots x chunks */
    float *norm_out_scratch;  /* the final norm's output when not saved */
    float *d_stream, *d_other, *d_norm;
    float *row_weight, *row_loss, *row_correct;
    tsr_pp_action *actions;
    size_t action_count;
    uint64_t pipeline_wait_ns, pipeline_step_ns;
    tsr_microbatch *mbs;
    int32_t *mb_tokens, *mb_targets;
    float *mb_mask;
    int32_t *mb_doc_start, *mb_prefix_lo, *mb_prefix_hi; /* NULL unless the flags need them */
    int slot; /* being computed */
    struct tsr_module_exec exec;
    /* generation (net_decode.c): rows of the step (one token per sample)
     * and its position; 0 rows: not decoding */
    int64_t decode_rows, decode_position;
    float loss_scale;  /* of the micro batch being computed (set_loss_weights) */
    double aux_loss;   /* modules' own loss terms since tsr_net_take_aux_loss */
    tsr_net_expert_log expert_log; /* net_expert_load.c */
    size_t *ep_counts; /* 4 x ep: alltoallv counts and displacements (ep > 1) */
};

/* Rows of a buffer kind for this rank. */
int64_t tsr_net_rows(const tsr_net *net, tsr_buffer_rows rows);

/* Unit index of the embedding, of layer l, of the final norm, the head. */
int tsr_net_unit_embedding(const tsr_net *net);
int tsr_net_unit_layer(const tsr_net *net, int64_t layer);
int tsr_net_unit_final_norm(const tsr_net *net);
int tsr_net_unit_head(const tsr_net *net);

/* Pointer to node n's buffer b with the current unit block and scratch. */
float *tsr_net_buffer(const tsr_net *net, const tsr_module_node *node, int b,
                      float *unit_saved);

/* The schedule of pipeline rank pp_rank (net_dims.c). */
tsr_pp_schedule_spec tsr_net_schedule_spec(const tsr_net_dims *d, int pp_rank);
/* Offsets, tensors, spans from the declared table (net_tables.c). */
tsr_status tsr_net_derive_tables(tsr_net *net);

/* Memory plan and carving (net_memory.c). */
size_t tsr_net_schedule_length(const tsr_net_dims *d);
tsr_status tsr_net_layout_memory(tsr_net *net);

/* Whether local layer j of a chunk of n layers is recomputed, and its group. */
bool tsr_net_recomputed(const tsr_net *net, int j, int n, int *first, int *count);

/* Saved activations held in 16 bits (net_held.c): whether unit u's are;
 * the floats a held unit's block takes in a slot; rounding the staged
 * block into the slot after forward and widening it back before
 * backward; x rounded in place to the held precision (nothing when fp32:
 * a recomputed unit's activations, so that its backward reads what a
 * held one's would). */
bool tsr_net_unit_held(const tsr_net *net, const tsr_net_unit *u);
size_t tsr_net_held_floats(const tsr_net_unit *u);
void tsr_net_hold_saved(const tsr_net *net, const tsr_net_unit *u, float *slot_block);
void tsr_net_restore_saved(const tsr_net *net, const tsr_net_unit *u, const float *slot_block);
void tsr_net_round_held(const tsr_net *net, float *x, size_t n);

/* The residual stream between layers (a chunk's input, each layer's
 * output) is kept in 16 bits under --bf16 / --fp16 unless
 * --fp32-residual-connection, as Megatron keeps its hidden states: a
 * forward writes fp32 into a work buffer (tsr_net_stream_target), which
 * tsr_net_keep_stream rounds in place (the next layer reads the rounded
 * values, the ones backward will see) and packs into the slot's store;
 * tsr_net_stream_view widens a store back. In fp32 the store is the fp32
 * buffer itself and keeping is nothing. Work buffer k is 0 or 1: a layer
 * reads one and writes the other. Pipelines send the store as it is. */
bool tsr_net_stream_held(const tsr_net *net);
size_t tsr_net_stream_store_floats(const tsr_net *net, size_t n);
float *tsr_net_stream_target(const tsr_net *net, float *store, int k);
void tsr_net_keep_stream(const tsr_net *net, float *x, float *store, size_t n);
const float *tsr_net_stream_view(const tsr_net *net, const float *store, int k, size_t n);
/* the element type a stored stream travels as between pipeline stages */
tsr_comm_dtype tsr_net_stream_dtype(const tsr_net *net);

/* Execution (net_step.c). */
void tsr_net_select_slot(tsr_net *net, int slot);
float *tsr_net_chunk_output(tsr_net *net, int chunk);
tsr_status tsr_net_forward_chunk(tsr_net *net, const tsr_microbatch *mb, int chunk, bool train,
                                 double *loss);
tsr_status tsr_net_backward_chunk(tsr_net *net, const tsr_microbatch *mb, int chunk);
void tsr_net_set_loss_weights(tsr_net *net, const tsr_microbatch *mb, float loss_scale);
void tsr_net_eval_counts(const tsr_net *net, const tsr_microbatch *mb, tsr_eval_counts *out);

/* Pipeline (net_pipeline.c). */
tsr_status tsr_net_pipeline_iteration(tsr_net *net, const tsr_microbatch_source *src, int count,
                                      float loss_scale, double *loss_sum);
tsr_status tsr_net_pipeline_eval(tsr_net *net, const tsr_microbatch *mb, tsr_eval_counts *out);

#endif /* TSR_SHARDING_NET_INTERNAL_H */
