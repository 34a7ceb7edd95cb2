/*
 * net.h - the builder: a model spec (tessera/spec.h) + the run's config +
 * the grid -> this rank's part of the model, as the trainer's tsr_model.
 *
 * Everything is derived from the modules' declarations in one walk:
 * parameter names and global shapes, this rank's blocks of them (TP split,
 * pipeline stage), the checkpoint tensor descriptors, the optimizer spans,
 * which gradients are summed over which group, the memory plan and the
 * carving of that same plan, and the pipeline chunks.
 *
 * Lifecycle (launcher/cmd_train.c, tests):
 *   dims = tsr_net_dims_from_config(); tsr_net_dims_set_pipeline();
 *   tsr_net_build()     checks the spec (configuration errors) and
 *                       declares every module; start-up heap only
 *   tsr_net_plan()      adds its memory to the plan
 *   tsr_plan_allocate() (the caller)
 *   tsr_net_carve()     takes the memory, initialises the weights
 *   ... tsr_net_as_model() ...
 *   tsr_net_destroy()
 */
#ifndef TSR_SHARDING_NET_H
#define TSR_SHARDING_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "sharding/grid.h"
#include "tessera/config.h"
#include "tessera/spec.h"
#include "train/model.h"

#define TSR_NET_MAX_CHUNKS 64

typedef struct tsr_net tsr_net;

/* Global sizes and this rank's share: sequence split under SP, vocabulary
 * split over tp, the pipeline stage's chunks of layers. */
typedef struct tsr_net_dims {
    int64_t layers, hidden;
    int64_t vocab;        /* of the dataset */
    int64_t padded_vocab; /* rows of the embedding (Megatron padding) */
    int64_t seq, micro_batch;
    int tp, tp_rank;
    int ep, ep_rank; /* expert parallelism: experts split over ep */
    int dp;          /* data-parallel size (aligns the expert region) */
    bool sp;
    int64_t l_vocab, vocab_start, l_seq;
    int pp, pp_rank, chunks;
    int chunk_first_layer[TSR_NET_MAX_CHUNKS], chunk_layers[TSR_NET_MAX_CHUNKS];
    bool has_embedding, has_head;
    int64_t local_layers;
    int slots;        /* micro batches whose activations are kept at once */
    int microbatches; /* per iteration on this data-parallel rank */
} tsr_net_dims;

/* A parameter as the builder laid it out. */
typedef struct tsr_net_param {
    char name[128];
    int64_t rows, cols; /* global (vocabulary tables: padded rows) */
    tsr_param_split split;
    unsigned flags;
    int64_t local_rows, local_cols;
    bool local;         /* held by this rank's pipeline stage */
    bool tied_copy;     /* a later stage's copy of the tied embedding table */
    bool frozen;        /* TSR_PARAM_FROZEN: in the frozen array, no gradient */
    size_t offset;      /* floats from the start of params/grads (local only), or of
                         * the frozen array */
    tsr_param_init init;
    float init_value;
    /* TSR_PARAM_ADAPTER: the entry of the weight it adapts, its half, and
     * the scale of up @ down */
    size_t adapts;
    tsr_adapter_role adapter_role;
    float adapter_scale;
    int64_t experts; /* tsr_decl_experts */
    tsr_param_split expert_split; /* tsr_decl_expert_split */
    size_t first_tensor, tensor_blocks; /* its checkpoint tensor descriptors */
} tsr_net_param;

/* Sizes for tensor-parallel rank tp_rank without pipeline parallelism. */
tsr_net_dims tsr_net_dims_from_config(const tsr_config *cfg, int64_t vocab_size, int tp_rank);
/* This rank's place in the expert-parallel group and the data-parallel
 * size (ep from the config; both 1 / rank 0 before this is called). */
void tsr_net_dims_set_experts(tsr_net_dims *dims, int ep_rank, int dp_size);
/* Cuts the layers for pipeline rank pp_rank (Megatron's split, virtual
 * stages) and sizes the slots for `microbatches` per iteration. */
tsr_status tsr_net_dims_set_pipeline(tsr_net_dims *dims, const tsr_config *cfg, int pp_rank,
                                     int microbatches);

/* Declares and checks every module of spec (which must outlive the net).
 * Errors are configuration errors naming the parameter or module. */
tsr_status tsr_net_build(const tsr_model_spec *spec, const tsr_config *cfg,
                         const tsr_net_dims *dims, tsr_net **out);
void tsr_net_destroy(tsr_net *net);

void tsr_net_plan(const tsr_net *net, tsr_memory_plan *plan);
/* grid: NULL for one rank (dims.tp and dims.pp must be 1). */
tsr_status tsr_net_carve(tsr_net *net, tsr_grid *grid, tsr_memory_plan *plan);

/* The model the trainer runs. Under expert parallelism (ep > 1) the
 * experts this rank holds lie first in params/grads, in a region of
 * model.expert_count floats (a multiple of dp x TSR_SHARD_ALIGN_FLOATS):
 * reduced over the expert-data-parallel group, the rest over dp. */
tsr_model tsr_net_as_model(tsr_net *net);

const tsr_net_dims *tsr_net_get_dims(const tsr_net *net);
/* The spec the net was built from. */
const tsr_model_spec *tsr_net_spec(const tsr_net *net);
const tsr_net_param *tsr_net_params(const tsr_net *net, size_t *count);
float *tsr_net_param_data(tsr_net *net);
/* Where parameter p's local block is (NULL when not local). */
float *tsr_net_param_values(tsr_net *net, const tsr_net_param *p);
float *tsr_net_grad_data(tsr_net *net);
/* Global parameter count of the model (every stage, every shard). */
int64_t tsr_net_global_param_count(const tsr_net *net);
double tsr_net_flops_per_sample(const tsr_net *net);
/* Floats one micro batch's forward writes into saved blocks and layer
 * outputs on this stage, recomputed layers counted as if they were not:
 * the element-wise traffic the time model charges (time_model.h). */
size_t tsr_net_forward_saved_floats(const tsr_net *net);
/* Elements of the largest buffer any module declared on this stage, or
 * of the residual stream if larger: the largest activation a module can
 * hand a matrix product (the bf16 operand workspace, tsr_model). */
size_t tsr_net_largest_buffer_floats(const tsr_net *net);

/* Forward without dropout; this rank's slice of the logits of the real
 * vocabulary, (B*T, *count) ids from vocab_start (one pipeline stage). */
tsr_status tsr_net_logits(tsr_net *net, const int32_t *tokens, float *logits, int64_t *count);
/* The same for a micro batch with its attention rows (documents, prefixes);
 * its targets and mask are not read. */
tsr_status tsr_net_logits_of(tsr_net *net, const tsr_microbatch *mb, float *logits,
                             int64_t *count);

/* Generation (net_decode.c): whether this rank's model can run one token
 * per sample at a time (every module declares decodes; one pipeline stage,
 * no sequence parallelism), with a message naming what cannot. */
tsr_status tsr_net_decode_check(const tsr_net *net);
/* One generation step: tokens (B) of every sample at `position` (0 ..
 * seq-1, taken in order from 0: the key/value cache of the earlier
 * positions is in the modules' saved buffers of slot 0) -> this rank's
 * slice of the logits of the real vocabulary (B, *count) from vocab_start,
 * as tsr_net_logits gives. */
tsr_status tsr_net_decode_step(tsr_net *net, const int32_t *tokens, int64_t position,
                               float *logits, int64_t *count);

/* The same with the logits of the whole real vocabulary (B, vocab) in
 * `full` on every tensor-parallel rank; slice: (B, local vocab) scratch.
 * Collective over the tensor-parallel group. */
tsr_status tsr_net_decode_logits(tsr_net *net, const int32_t *tokens, int64_t position,
                                 float *slice, float *full);

/* The modules' own loss terms (MoE load balancing, z-loss) added in the
 * training forwards on this rank since the last call, and zeroes them. */
double tsr_net_take_aux_loss(tsr_net *net);

/* How evenly the router spread the rows of the training forwards so far
 * over the expert-parallel ranks, each as a share of the rows an even
 * routing gives a rank: exchange, at the busiest rank of each exchange
 * (the one the others wait for), summed over the last TSR_NET_EXPERT_LOG
 * MoE layer forwards, the largest over the groups; busiest and least, the
 * run's totals of the ranks. measured is false without expert
 * parallelism. A collective over the grid's world (and EP groups). */
typedef struct tsr_expert_load_stats {
    bool measured;
    double exchange, busiest, least;
    int64_t exchanges; /* behind `exchange`, per rank */
} tsr_expert_load_stats;
tsr_status tsr_net_expert_load_measure(const tsr_net *net, tsr_grid *grid,
                                       tsr_expert_load_stats *out);

/* Folds every low-rank adapter into the weight it adapts (W += scale x
 * up @ down on this rank's blocks, which hold matching pieces in any
 * layout) and zeroes the up halves, so the model computes the same
 * function with the adapters contributing nothing. Returns how many
 * weights changed. */
int64_t tsr_net_merge_adapters(tsr_net *net);
/* Trainable and frozen parameters of the whole model (every stage, every
 * shard), for the log line of an adapter run. */
void tsr_net_trainable_count(const tsr_net *net, int64_t *trainable, int64_t *frozen);

/* Each pipeline rank's share of its steps spent waiting in exchanges,
 * gathered into fractions[pp]; collective over the pipeline group. */
tsr_status tsr_net_pipeline_bubble(tsr_net *net, double *fractions);

#endif /* TSR_SHARDING_NET_H */
