/*
 * hf_test_models.c - see hf_test_models.h.
 */
#include "hf_test_models.h"

#include <stdlib.h>
#include <string.h>

#include "reference_configs.h"

static uint32_t hash(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* uniform in [-0.125, 0.125), a multiple of 2^-26: exact in fp32 */
static float perturbation(size_t tensor, size_t i)
{
    uint32_t h = hash((uint32_t)i * 2654435761u ^ hash((uint32_t)tensor + 1));
    return ((float)(h >> 8) / 16777216.0f - 0.5f) * 0.25f;
}

tsr_status hf_test_model_build(const char *preset, bool perturb, hf_test_model *m)
{
    memset(m, 0, sizeof *m);
    tsr_config *cfg = &m->cfg;
    tsr_config_defaults(cfg);
    cfg->num_layers = 2;
    cfg->hidden_size = 64;
    cfg->num_attention_heads = 4;
    cfg->seq_length = HF_TEST_SEQ;
    cfg->micro_batch_size = HF_TEST_BATCH;
    cfg->vocab_size = HF_TEST_VOCAB;
    if (strcmp(preset, "gpt2") == 0) {
        cfg->max_position_embeddings = 32;
        m->family = TSR_HF_GPT2;
    } else {
        tsr_reference_llama_style(cfg, 2);
        cfg->rotary_base = 500.0; /* a base of its own: a wrong one changes the logits */
        m->family = TSR_HF_LLAMA;
    }
    tsr_status st = tsr_test_net_build(&m->t, cfg, HF_TEST_VOCAB, NULL, 0);
    if (st == TSR_OK) {
        tsr_net_plan(m->t.net, &m->plan);
        st = tsr_plan_allocate(&m->plan);
    }
    if (st == TSR_OK)
        st = tsr_net_carve(m->t.net, NULL, &m->plan);
    if (st != TSR_OK)
        return st;
    m->model = tsr_net_as_model(m->t.net);
    m->views = calloc(m->model.tensor_count + 1, sizeof *m->views);
    if (m->views == NULL)
        return TSR_ERR_OUT_OF_MEMORY;
    tsr_hf_tensors_of(&m->model, m->views, &m->view_count);
    for (size_t k = 0; perturb && k < m->view_count; k++) {
        const tsr_hf_tensor *v = &m->views[k];
        for (size_t i = 0; i < (size_t)(v->rows * v->cols); i++)
            v->data[i] += perturbation(k, i);
    }
    return TSR_OK;
}

void hf_test_model_free(hf_test_model *m)
{
    free(m->views);
    tsr_plan_release(&m->plan);
    tsr_test_net_free(&m->t);
    memset(m, 0, sizeof *m);
}
