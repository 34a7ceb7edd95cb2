/*
 * reference_configs.h - the model and training settings shared by the
 * fixture-input dump tool and the comparison test, so both describe the
 * same run as the PyTorch reference (make_fixtures.py).
 */
#ifndef TSR_TESTS_REFERENCE_CONFIGS_H
#define TSR_TESTS_REFERENCE_CONFIGS_H

#include "tessera/config.h"

#define TSR_REFERENCE_STEPS 10

/* preset: "gpt2" (LayerNorm, learned positions, GELU, biases, tied output)
 * or "llama" (RMSNorm, rope, SwiGLU, no biases, untied, grouped queries).
 * Returns TSR_ERR_INVALID_ARG for other names. */
tsr_status tsr_reference_config(const char *preset, tsr_config *cfg);

#endif /* TSR_TESTS_REFERENCE_CONFIGS_H */
