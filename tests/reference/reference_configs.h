/*
 * reference_configs.h - the model and training settings shared by the
 * fixture-input dump tool and the comparison test, so both describe the
 * same run as the PyTorch reference (make_fixtures.py); its LLaMA-style
 * architecture is also the one the layout-equivalence tests compare.
 */
#ifndef TSR_TESTS_REFERENCE_CONFIGS_H
#define TSR_TESTS_REFERENCE_CONFIGS_H

#include "tessera/config.h"

#define TSR_REFERENCE_STEPS 10

/* preset: "gpt2" (LayerNorm, learned positions, GELU, biases, tied output)
 * or "llama" (RMSNorm, rope, SwiGLU, no biases, untied, grouped queries);
 * "gpt2_lora" and "llama_lora": the same with rank-4 LoRA adapters (the
 * base frozen; see reference_configs.c for the linears adapted).
 * Returns TSR_ERR_INVALID_ARG for other names. */
tsr_status tsr_reference_config(const char *preset, tsr_config *cfg);

/* Turns cfg into the LLaMA-style architecture of the "llama" preset, which
 * the layout-equivalence tests use too: RMSNorm, rotary positions, SwiGLU
 * (ffn 96), no biases, untied output, `query_groups` key/value groups. */
void tsr_reference_llama_style(tsr_config *cfg, int query_groups);

#endif /* TSR_TESTS_REFERENCE_CONFIGS_H */
