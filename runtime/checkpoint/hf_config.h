/*
 * hf_config.h - a Hugging Face config.json of a GPT-2 or LLaMA-family
 * model, read into tessera's model flags and written from them.
 *
 * The two families are the two architectures tessera's GPT spec builds
 * that transformers names: "gpt2" (LayerNorm, learned positions, GELU with
 * the tanh approximation, biases, heads = query groups) and "llama"
 * (RMSNorm, rotary positions in the rotate-half convention, SwiGLU, no
 * biases, grouped queries). A config.json asking for anything else
 * (another activation, rope scaling, attention biases on a LLaMA, ...) is
 * refused with a message naming the key, never silently approximated.
 */
#ifndef TSR_RUNTIME_HF_CONFIG_H
#define TSR_RUNTIME_HF_CONFIG_H

#include "tessera/config.h"
#include "tessera/status.h"

typedef enum tsr_hf_family { TSR_HF_GPT2, TSR_HF_LLAMA } tsr_hf_family;

const char *tsr_hf_family_name(tsr_hf_family family);

/* Reads path (a config.json) into cfg's model fields: layers, hidden,
 * heads, query groups, ffn, vocabulary, max positions, norm, position
 * type, activation, biases, tying, epsilon, rotary base, init std. Other
 * fields keep their values. TSR_ERR_FORMAT / TSR_ERR_INVALID_ARG naming
 * the key on a config tessera cannot represent. */
tsr_status tsr_hf_config_read(const char *path, tsr_config *cfg, tsr_hf_family *family);

/* The family whose architecture cfg's model has, or TSR_ERR_UNSUPPORTED
 * saying which of its choices has no Hugging Face counterpart. */
tsr_status tsr_hf_family_of(const tsr_config *cfg, tsr_hf_family *family);

/* Writes cfg's model as path (config.json) of the family, with the names
 * transformers' GPT2Config / LlamaConfig read; vocab: the real vocabulary. */
tsr_status tsr_hf_config_write(const char *path, const tsr_config *cfg, int64_t vocab,
                               tsr_hf_family family);

#endif /* TSR_RUNTIME_HF_CONFIG_H */
