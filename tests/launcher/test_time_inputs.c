/*
 * test_time_inputs.c - the products the time model prices by shape
 * (time_inputs.c), read off a planned layout of the built-in decoder and
 * checked against shapes worked out by hand: an MoE model under expert
 * parallelism, its experts' rows from both ranks.
 */
#include <string.h>

#include "harness.h"
#include "layout_estimate.h"
#include "model_select.h"
#include "tessera/kernels.h"
#include "tessera/log.h"

static void expect_gemm(const tsr_time_gemm *g, double rows, double k, double n, double count)
{
    CU_ASSERT_DOUBLE_EQUAL(g->rows, rows, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(g->k, k, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(g->n, n, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(g->count, count, 1e-9);
}

/* 2 layers, hidden 64 (4 heads), 2 x 32 tokens a micro batch; layer 1 is
 * MoE (4 experts of width 128, top 2) over EP 2 = DP 2. */
static void test_moe_products(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 2;
    cfg.hidden_size = 64;
    cfg.num_attention_heads = 4;
    cfg.seq_length = 32;
    cfg.max_position_embeddings = 32;
    cfg.micro_batch_size = 2;
    cfg.global_batch_size = 4;
    cfg.num_experts = 4;
    cfg.moe_router_topk = 2;
    cfg.moe_ffn_hidden_size = 128;
    cfg.moe_layer_freq = "[0,1]";
    cfg.expert_model_parallel_size = 2;
    CU_ASSERT_EQUAL_FATAL(tsr_config_validate(&cfg, 2), TSR_OK);
    const tsr_model_entry *entry = NULL;
    tsr_spec_arena *arena = NULL;
    tsr_model_spec spec;
    CU_ASSERT_EQUAL_FATAL(tsr_model_select(&cfg, &entry), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_spec_arena_create(&arena), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(entry->build(&cfg, arena, &spec), TSR_OK);
    tsr_machine m;
    CU_ASSERT_EQUAL_FATAL(tsr_machine_load("dgx-a100", &m), TSR_OK);
    tsr_layout_estimate est;
    CU_ASSERT_EQUAL_FATAL(tsr_layout_estimate_of(&cfg, &spec, 100, 2, &m, 1, TSR_LAYOUT_FP32, &est),
                          TSR_OK);
    tsr_spec_arena_destroy(arena);
    const tsr_time_inputs *in = &est.inputs;
    CU_ASSERT_EQUAL_FATAL(in->gemms, 8);
    expect_gemm(&in->gemm[0], 64, 64, 192, 2);  /* qkv, both layers */
    expect_gemm(&in->gemm[1], 64, 64, 64, 2);   /* proj */
    expect_gemm(&in->gemm[2], 64, 64, 256, 1);  /* the dense layer's fc1 (4 x 64) */
    expect_gemm(&in->gemm[3], 64, 256, 64, 1);  /* fc2 */
    expect_gemm(&in->gemm[4], 64, 64, 4, 1);    /* router */
    /* each of the 2 local experts: 64 x 2 / 4 rows from each of 2 ranks */
    expect_gemm(&in->gemm[5], 64, 64, 128, 2);
    expect_gemm(&in->gemm[6], 64, 128, 64, 2);
    expect_gemm(&in->gemm[7], 64, 64, 128, 1); /* head: the vocabulary padded to 128 */
    for (int i = 0; i < in->gemms; i++) /* only the experts' rows follow the router */
        CU_ASSERT_EQUAL(in->gemm[i].routed, i == 5 || i == 6);
    CU_ASSERT_EQUAL(in->expert_load, 0.0); /* a prediction takes the routing as even */
    tsr_attn_mask mask;
    CU_ASSERT_EQUAL_FATAL(tsr_config_layer_attention(&cfg, 0, &mask), TSR_OK);
    CU_ASSERT_DOUBLE_EQUAL(in->other_flops,
                           4.0 * 64 * 2 * 2 * tsr_attention_computed_elements(&mask, 32), 1e-6);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_moe_products),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("time model inputs", cases)};
    return tsr_test_main(suites, 1);
}
