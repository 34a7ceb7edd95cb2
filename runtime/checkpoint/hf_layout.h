/*
 * hf_layout.h - where each tensor of tessera's GPT spec lives in a Hugging
 * Face GPT-2 or LLaMA state dict, and the copies between the two.
 *
 * One table, built from the model config, binds every tessera tensor
 * (docs/checkpoint-format.md names) to the Hugging Face tensors it is made
 * of, with the rearrangement between them: GPT-2's Conv1D weights are
 * stored (in, out) and are transposed; its c_attn holds [q | k | v] by
 * columns and LLaMA has q_proj, k_proj, v_proj, where tessera's
 * linear_qkv holds per key/value group its query heads, then its key head,
 * then its value head; LLaMA's gate_proj and up_proj are the two halves of
 * tessera's linear_fc1. Import and export walk the same table the two ways,
 * so each is the other's exact inverse (fp32 copies, no arithmetic).
 */
#ifndef TSR_RUNTIME_HF_LAYOUT_H
#define TSR_RUNTIME_HF_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint/hf_config.h"
#include "checkpoint/safetensors.h"
#include "tessera/config.h"
#include "tessera/status.h"
#include "train/model.h"

/* A tessera tensor at its global shape, contiguous and row-major (as one
 * rank holds it). Vocabulary tables: the real vocabulary's rows. */
typedef struct tsr_hf_tensor {
    const char *name;
    int64_t rows, cols;
    float *data;
} tsr_hf_tensor;

/* The tensors of a one-rank model as global views into its parameter
 * arrays: out[model->tensor_count] gets *count of them (a SwiGLU fc1,
 * described as two halves, is one view: on one rank they are adjacent).
 * The model must hold every block (no tensor or pipeline parallelism). */
void tsr_hf_tensors_of(const tsr_model *model, tsr_hf_tensor *out, size_t *count);

/* Fills every tensor from the safetensors files (a model's shards, opened),
 * after checking that each Hugging Face tensor the model needs is there
 * exactly once with the shape cfg implies, and that the files hold nothing
 * else (besides buffers transformers recomputes: GPT-2's attention masks,
 * LLaMA's rotary inv_freq, a tied lm_head). Every tensor of the list must
 * be one the family's layout binds. TSR_ERR_FORMAT naming file and tensor. */
tsr_status tsr_hf_import(const tsr_config *cfg, tsr_hf_family family, const tsr_st_file *files,
                         size_t file_count, tsr_hf_tensor *tensors, size_t count);

/* The checks of tsr_hf_import on the files alone, before a model is built
 * (so that a bad file is found before anything is allocated). */
tsr_status tsr_hf_check(const tsr_config *cfg, tsr_hf_family family, const tsr_st_file *files,
                        size_t file_count);

/* Writes the tensors as path (one safetensors file, F32) with the names
 * and layout transformers' GPT2LMHeadModel / LlamaForCausalLM load. */
tsr_status tsr_hf_export(const tsr_config *cfg, tsr_hf_family family, const tsr_hf_tensor *tensors,
                         size_t count, const char *path);

#endif /* TSR_RUNTIME_HF_LAYOUT_H */
