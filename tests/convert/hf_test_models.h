/*
 * hf_test_models.h - the two models the Hugging Face conversion is
 * checked on, shared by the fixture dump tool (dump_hf_export) and the
 * test that compares against the fixtures (test_hf_convert):
 *   "gpt2":  LayerNorm, learned positions, GELU, biases, tied output;
 *   "llama": RMSNorm, rotary, SwiGLU, no biases, 2 key/value groups for 4
 *            heads, untied output.
 * Both: 2 layers, hidden 64, vocabulary 50 (padded to 128 inside), seq 16.
 * The weights are tessera's initial ones plus a perturbation from an
 * integer hash (exact, the same on every machine), so that biases and
 * norm weights, which start constant, differ element by element and a
 * wrong mapping of any of them changes the logits.
 */
#ifndef TSR_TESTS_HF_TEST_MODELS_H
#define TSR_TESTS_HF_TEST_MODELS_H

#include "arena.h"
#include "checkpoint/hf_config.h"
#include "checkpoint/hf_layout.h"
#include "test_net.h"

#define HF_TEST_BATCH 2
#define HF_TEST_SEQ 16
#define HF_TEST_VOCAB 50

typedef struct hf_test_model {
    tsr_config cfg;
    tsr_hf_family family;
    tsr_test_net t;
    tsr_memory_plan plan;
    tsr_model model;
    tsr_hf_tensor *views;
    size_t view_count;
} hf_test_model;

/* preset "gpt2" or "llama"; perturb: add the hashed perturbation. */
tsr_status hf_test_model_build(const char *preset, bool perturb, hf_test_model *m);
void hf_test_model_free(hf_test_model *m);

#endif /* TSR_TESTS_HF_TEST_MODELS_H */
