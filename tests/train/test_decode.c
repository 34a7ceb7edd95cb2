/*
 * test_decode.c - generation steps against the whole-sequence forward:
 * feeding a sample one token at a time (tsr_net_decode_step, the key/value
 * cache in attention's saved buffers) gives at every position the logits
 * the causal forward over the whole sequence gives there, within 1e-5
 * relative L2: a GPT-2-style model (learned positions, biases, tied head)
 * and a LLaMA-style one (rotary, grouped queries, SwiGLU, untied) with
 * random LoRA adapters on all four linears, and a window layer; and a
 * model with mixture-of-experts layers (the router's choices per token).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "data/dataset.h"
#include "harness.h"
#include "tessera/log.h"
#include "tessera/rng.h"
#include "test_net.h"

static void check_model(tsr_config *cfg, const char *what)
{
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(cfg, &ds), TSR_OK);
    tsr_test_net t;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&t, cfg, ds->vocab_size, NULL, 0), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_decode_check(t.net), TSR_OK);
    tsr_memory_plan plan;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve(&t, &plan), TSR_OK);
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(t.net, &count);
    uint64_t key = tsr_rng_key(9, "test_decode");
    for (size_t i = 0; i < count; i++)
        if (table[i].adapter_role == TSR_ADAPTER_UP) {
            float *v = tsr_net_param_values(t.net, &table[i]);
            for (int64_t j = 0; j < table[i].rows * table[i].cols; j++)
                v[j] = 0.2f * (tsr_rng_uniform(key, i * 1000003u + (uint64_t)j) - 0.5f);
        }
    int64_t b = cfg->micro_batch_size, tl = cfg->seq_length, rows = b * tl;
    int32_t *tokens = malloc((size_t)(rows + 1) * sizeof *tokens);
    int32_t *targets = malloc((size_t)rows * sizeof *targets);
    float *mask = malloc((size_t)rows * sizeof *mask);
    tsr_dataset_batch(ds, TSR_SPLIT_VALID, 0, (int)b, tokens, targets, mask);
    int64_t v = tsr_net_get_dims(t.net)->vocab, width = 0;
    float *full = malloc((size_t)(rows * v) * sizeof *full);
    float *step = malloc((size_t)(b * v) * sizeof *step);
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(t.net, tokens, full, &width), TSR_OK);
    double worst = 0.0;
    int32_t *column = malloc((size_t)b * sizeof *column);
    for (int64_t p = 0; p < tl; p++) {
        for (int64_t s = 0; s < b; s++)
            column[s] = tokens[s * tl + p];
        CU_ASSERT_EQUAL_FATAL(tsr_net_decode_step(t.net, column, p, step, &width), TSR_OK);
        CU_ASSERT_EQUAL_FATAL(width, v);
        double d = 0.0, n = 0.0;
        for (int64_t s = 0; s < b; s++)
            for (int64_t j = 0; j < v; j++) {
                double e = full[(s * tl + p) * v + j], g = step[s * v + j];
                d += (g - e) * (g - e);
                n += e * e;
            }
        double err = sqrt(d / n);
        if (err > worst)
            worst = err;
    }
    printf("\n  %s: %lld positions one token at a time vs the whole sequence: worst logits "
           "rel L2 %.3g\n",
           what, (long long)tl, worst);
    CU_ASSERT_TRUE(worst <= 1e-5);
    CU_ASSERT_NOT_EQUAL(tsr_net_decode_step(t.net, column, tl, step, &width), TSR_OK);
    free(column);
    free(full);
    free(step);
    free(tokens);
    free(targets);
    free(mask);
    tsr_plan_release(&plan);
    tsr_test_net_free(&t);
    tsr_dataset_close(ds);
}

static void base_config(tsr_config *cfg)
{
    tsr_config_defaults(cfg);
    cfg->num_layers = 3;
    cfg->hidden_size = 64;
    cfg->num_attention_heads = 4;
    cfg->seq_length = 40;
    cfg->micro_batch_size = 3;
    cfg->data_path = "synthetic:addition:2";
}

static void test_gpt2_style(void)
{
    tsr_config cfg;
    base_config(&cfg);
    check_model(&cfg, "gpt2-style");
}

static void test_llama_style_lora_window(void)
{
    tsr_config cfg;
    base_config(&cfg);
    cfg.normalization = TSR_NORM_RMSNORM;
    cfg.position_embedding_type = TSR_POS_ROPE;
    cfg.swiglu = true;
    cfg.ffn_hidden_size = 96;
    cfg.disable_bias_linear = true;
    cfg.untie_embeddings_and_output_weights = true;
    cfg.group_query_attention = true;
    cfg.num_query_groups = 2;
    cfg.lora_rank = 4;
    cfg.lora_alpha = 8.0;
    cfg.attention_pattern = "dense,window,dense";
    cfg.window_size = 7;
    check_model(&cfg, "llama-style, LoRA, a window-7 layer");
}

static void test_moe_layers(void)
{
    tsr_config cfg;
    base_config(&cfg);
    cfg.num_experts = 4;
    cfg.moe_router_topk = 2;
    cfg.moe_shared_expert_intermediate_size = 32;
    cfg.moe_layer_freq = "[1,0,1]";
    check_model(&cfg, "MoE layers 0 and 2 (4 experts, top-2, shared)");
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_gpt2_style),
    TSR_TEST(test_moe_layers),
    TSR_TEST(test_llama_style_lora_window),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("decode", cases)};
    return tsr_test_main(suites, 1);
}
