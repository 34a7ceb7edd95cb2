/*
 * gpt.h - the GPT / LLaMA-style decoder, built from the config.
 *
 * One family covers both presets: LayerNorm or RMSNorm, learned absolute
 * or rotary positions, GELU or SwiGLU MLP, biases or none, tied or untied
 * output layer, grouped query attention. Parameters carry Megatron-Core's
 * names ("decoder.layers.3.self_attention.linear_qkv.weight") and are
 * initialised from the counter-based RNG keyed by (seed, name, global
 * element index), so any layout can reproduce them.
 *
 * Lifecycle: tsr_gpt_plan() adds the model's memory to a plan; after the
 * plan is allocated, tsr_gpt_create() carves it and initialises weights.
 */
#ifndef TSR_MODELS_GPT_H
#define TSR_MODELS_GPT_H

#include <stdint.h>

#include "arena.h"
#include "sharding/grid.h"
#include "tessera/config.h"
#include "train/model.h"

typedef struct tsr_gpt tsr_gpt;

#define TSR_GPT_MAX_CHUNKS 64

/* Global sizes, and this rank's share of them under tensor parallelism
 * (heads, query groups, MLP width and vocabulary split over tp ranks; the
 * sequence split too under sequence parallelism). */
typedef struct tsr_gpt_dims {
    int64_t layers, hidden, heads, groups, head_dim, ffn, fc1_out, qkv_out;
    int64_t vocab;        /* of the dataset */
    int64_t padded_vocab; /* rows of the embedding (Megatron padding) */
    int64_t seq, max_positions, micro_batch;
    int64_t head_chunk_rows; /* rows of logits materialised at once */
    int tp, tp_rank;
    bool sp;
    int64_t l_heads, l_groups, l_ffn, l_fc1_out, l_qkv_out;
    int64_t l_vocab;     /* padded_vocab / tp rows of the embedding on this rank */
    int64_t vocab_start; /* global id of local row 0 */
    int64_t l_seq;       /* seq / tp under sequence parallelism, else seq */
    /* pipeline parallelism: this rank's model chunks (virtual stages) */
    int pp, pp_rank, chunks;
    int chunk_first_layer[TSR_GPT_MAX_CHUNKS], chunk_layers[TSR_GPT_MAX_CHUNKS];
    bool has_embedding, has_head; /* chunk 0 on the first rank; last chunk on the last */
    int64_t local_layers;         /* layers held by this rank (all chunks) */
    int slots;                    /* micro batches whose activations are kept at once */
    int microbatches;             /* per iteration on this data-parallel rank */
} tsr_gpt_dims;

/* How a parameter is cut across the tensor-parallel group. */
typedef enum tsr_gpt_split {
    TSR_SPLIT_NONE = 0, /* replicated (norms, row-parallel biases, positions) */
    TSR_SPLIT_ROWS,     /* output features / vocabulary rows (column-parallel) */
    TSR_SPLIT_COLS,     /* input features (row-parallel) */
    TSR_SPLIT_GATE_UP   /* SwiGLU fc1: the gate rows and the up rows, each split */
} tsr_gpt_split;

/* A named parameter: global shape (rows x cols; cols = 1 for 1-D), how it
 * is split, and this rank's block of it. */
typedef struct tsr_gpt_param {
    char name[96];
    int64_t rows, cols;
    tsr_gpt_split split;
    int64_t local_rows, local_cols;
    bool local;    /* held by this rank's pipeline stage */
    size_t offset; /* floats from the start of this rank's parameter array (local only) */
    float init_std; /* normal(0, std); 0 with init_value for constants */
    float init_value;
    bool decay;
} tsr_gpt_param;

/* Sizes for tensor-parallel rank tp_rank (0 for one rank), without
 * pipeline parallelism (every layer local, one activation slot). */
tsr_gpt_dims tsr_gpt_dims_from_config(const tsr_config *cfg, int vocab_size, int tp_rank);

/* Cuts the layers for pipeline rank pp_rank (Megatron's split, with
 * virtual stages) and sizes the activation slots for the schedule that
 * runs `microbatches` micro batches per iteration. */
tsr_status tsr_gpt_dims_set_pipeline(tsr_gpt_dims *dims, const tsr_config *cfg, int pp_rank,
                                     int microbatches);

/* Number of parameters and their table (static per config). */
size_t tsr_gpt_param_table(const tsr_gpt_dims *dims, const tsr_config *cfg,
                           tsr_gpt_param *table, size_t capacity);

void tsr_gpt_plan(const tsr_config *cfg, const tsr_gpt_dims *dims, tsr_memory_plan *plan);

/* grid: the run's parallel grid, or NULL for one rank (dims.tp must be 1). */
tsr_status tsr_gpt_create(const tsr_config *cfg, const tsr_gpt_dims *dims, tsr_grid *grid,
                          tsr_memory_plan *plan, tsr_gpt **out);
void tsr_gpt_destroy(tsr_gpt *gpt);

/* The training-loop view of this model. */
tsr_model tsr_gpt_as_model(tsr_gpt *gpt);

const tsr_gpt_param *tsr_gpt_params(const tsr_gpt *gpt, size_t *count);
float *tsr_gpt_param_data(tsr_gpt *gpt);
float *tsr_gpt_grad_data(tsr_gpt *gpt);

/* Forward without dropout; writes this rank's slice of the logits of the
 * real vocabulary, (B*T, ids vocab_start .. vocab_start+count), for
 * comparison with a reference; *count gets the slice width. */
tsr_status tsr_gpt_logits(tsr_gpt *gpt, const int32_t *tokens, float *logits, int64_t *count);

/* The share of this run's pipeline steps each pipeline rank spent waiting
 * in exchanges (its measured bubble), gathered into fractions[pp size];
 * collective over the pipeline group. */
tsr_status tsr_gpt_pipeline_bubble(tsr_gpt *gpt, double *fractions);

/* Megatron's FLOPs of one iteration of `samples` samples (forward +
 * backward, as in Megatron-LM's throughput report). */
double tsr_gpt_flops_per_sample(const tsr_config *cfg, const tsr_gpt_dims *dims);

#endif /* TSR_MODELS_GPT_H */
