/*
 * gpt_spec.h - the GPT / LLaMA-style decoder as a model spec: LayerNorm
 * or RMSNorm, learned or rotary positions, GELU or SwiGLU, biases or not,
 * tied or untied output, grouped query attention; all from the flags.
 * Registered as "gpt" (the flags as given), "gpt2" and "llama" (the
 * presets' shapes, applied by the flag parser).
 */
#ifndef TSR_MODELS_GPT_SPEC_H
#define TSR_MODELS_GPT_SPEC_H

#include "tessera/spec.h"

tsr_status tsr_gpt_build_spec(const tsr_config *cfg, tsr_spec_arena *arena, tsr_model_spec *out);

/* Megatron's FLOPs of forward + backward of one sample. */
double tsr_gpt_flops_per_sample(const tsr_config *cfg, int64_t padded_vocab);

#endif /* TSR_MODELS_GPT_SPEC_H */
