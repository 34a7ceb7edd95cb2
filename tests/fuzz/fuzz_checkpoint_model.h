/*
 * fuzz_checkpoint_model.h - the fixed configuration and tensor table that
 * the checkpoint fuzz target loads into and that make_checkpoint_seeds.c
 * saves its seed checkpoints from, so that seeds pass every check and the
 * fuzzer starts at the deepest path (tensor reads).
 *
 * Three tensors of a 48-float buffer: a matrix read whole, a vector, and a
 * matrix of which this rank holds a column block (as under tensor
 * parallelism), so hyperslab selection is exercised. Shared by those two
 * files only.
 */
#ifndef TSR_TESTS_FUZZ_CHECKPOINT_MODEL_H
#define TSR_TESTS_FUZZ_CHECKPOINT_MODEL_H

#include <stddef.h>

#include "checkpoint/checkpoint.h"
#include "tessera/config.h"

enum { FUZZ_CKPT_FLOATS = 48, FUZZ_CKPT_TENSORS = 3 };

static const tsr_tensor_desc fuzz_ckpt_tensors[FUZZ_CKPT_TENSORS] = {
    {"word_embeddings", 8, 4, 0, 8, 0, 4, 0, true, false, false, 0},
    {"final_layernorm_bias", 4, 1, 0, 4, 0, 1, 32, true, false, false, 0},
    {"dense_weight", 4, 6, 0, 4, 2, 3, 36, true, false, false, 0},
};

/* Owned ranges of the data-parallel share used by the second, sharded
 * load: they cut through all three tensors. */
static const tsr_shard_range fuzz_ckpt_ranges[2] = {{5, 20, 0}, {30, 15, 20}};
enum { FUZZ_CKPT_STATE_FLOATS = 35 };

static inline void fuzz_ckpt_config(tsr_config *cfg)
{
    tsr_config_defaults(cfg);
    cfg->num_layers = 1;
    cfg->hidden_size = 8; /* as the seed from `tessera train` (make_checkpoint_seeds.c) */
    cfg->num_attention_heads = 2;
    cfg->seq_length = 16;
    cfg->micro_batch_size = 1;
    cfg->train_iters = 1;
}

#endif /* TSR_TESTS_FUZZ_CHECKPOINT_MODEL_H */
