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
#include "tessera/config.h"
#include "train/model.h"

typedef struct tsr_gpt tsr_gpt;

typedef struct tsr_gpt_dims {
    int64_t layers, hidden, heads, groups, head_dim, ffn, fc1_out, qkv_out;
    int64_t vocab;        /* of the dataset */
    int64_t padded_vocab; /* rows of the embedding (Megatron padding) */
    int64_t seq, max_positions, micro_batch;
    int64_t head_chunk_rows; /* rows of logits materialised at once */
} tsr_gpt_dims;

/* A named parameter at its global shape (rows x cols; cols = 1 for 1-D). */
typedef struct tsr_gpt_param {
    char name[96];
    int64_t rows, cols;
    size_t offset; /* floats from the start of the parameter array */
    float init_std; /* normal(0, std); 0 with init_value for constants */
    float init_value;
    bool decay;
} tsr_gpt_param;

tsr_gpt_dims tsr_gpt_dims_from_config(const tsr_config *cfg, int vocab_size);

/* Number of parameters and their table (static per config). */
size_t tsr_gpt_param_table(const tsr_gpt_dims *dims, const tsr_config *cfg,
                           tsr_gpt_param *table, size_t capacity);

void tsr_gpt_plan(const tsr_config *cfg, const tsr_gpt_dims *dims, tsr_memory_plan *plan);

tsr_status tsr_gpt_create(const tsr_config *cfg, const tsr_gpt_dims *dims,
                          tsr_memory_plan *plan, tsr_gpt **out);
void tsr_gpt_destroy(tsr_gpt *gpt);

/* The training-loop view of this model. */
tsr_model tsr_gpt_as_model(tsr_gpt *gpt);

const tsr_gpt_param *tsr_gpt_params(const tsr_gpt *gpt, size_t *count);
float *tsr_gpt_param_data(tsr_gpt *gpt);
float *tsr_gpt_grad_data(tsr_gpt *gpt);

/* Forward without dropout; writes the logits of the real vocabulary,
 * (B*T, vocab), for comparison with a reference implementation. */
tsr_status tsr_gpt_logits(tsr_gpt *gpt, const int32_t *tokens, float *logits);

/* Megatron's FLOPs of one iteration of `samples` samples (forward +
 * backward, as in Megatron-LM's throughput report). */
double tsr_gpt_flops_per_sample(const tsr_config *cfg, const tsr_gpt_dims *dims);

#endif /* TSR_MODELS_GPT_H */
