/*
 * test_config.c - config defaults, presets, derived sizes, validation.
 */
#include <string.h>

#include "harness.h"
#include "tessera/config.h"

static tsr_config base(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    return cfg;
}

static void expect_invalid(const tsr_config *cfg, int world, const char *needle)
{
    tsr_status st = tsr_config_validate(cfg, world);
    CU_ASSERT_EQUAL(st, TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), needle));
}

static void test_defaults_are_valid_on_any_world_size(void)
{
    tsr_config cfg = base();
    for (int world = 1; world <= 8; world++)
        CU_ASSERT_EQUAL(tsr_config_validate(&cfg, world), TSR_OK);
    CU_ASSERT_EQUAL(tsr_config_data_parallel_size(&cfg, 8), 8);
}

static void test_presets(void)
{
    tsr_config cfg = base();
    cfg.model = TSR_PRESET_GPT2;
    tsr_config_apply_preset(&cfg);
    CU_ASSERT_EQUAL(cfg.num_layers, 12);
    CU_ASSERT_EQUAL(cfg.hidden_size, 768);
    CU_ASSERT_EQUAL(tsr_config_ffn_hidden_size(&cfg), 3072);
    CU_ASSERT_FALSE(cfg.disable_bias_linear);
    cfg = base();
    cfg.model = TSR_PRESET_LLAMA;
    tsr_config_apply_preset(&cfg);
    CU_ASSERT_EQUAL(cfg.normalization, TSR_NORM_RMSNORM);
    CU_ASSERT_EQUAL(cfg.position_embedding_type, TSR_POS_ROPE);
    CU_ASSERT_TRUE(cfg.swiglu && cfg.disable_bias_linear && cfg.untie_embeddings_and_output_weights);
    CU_ASSERT_EQUAL(tsr_config_num_query_groups(&cfg), 4);
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 1), TSR_OK);
}

static void test_swiglu_default_width(void)
{
    tsr_config cfg = base();
    cfg.hidden_size = 768;
    cfg.swiglu = true;
    CU_ASSERT_EQUAL(tsr_config_ffn_hidden_size(&cfg), 2048); /* 8*768/3 = 2048 */
    cfg.hidden_size = 100;
    CU_ASSERT_EQUAL(tsr_config_ffn_hidden_size(&cfg) % 64, 0);
}

static void test_vocab_padding_follows_megatron(void)
{
    tsr_config cfg = base();
    cfg.make_vocab_size_divisible_by = 128;
    CU_ASSERT_EQUAL(tsr_config_padded_vocab_size(&cfg, 50257), 50304);
    cfg.tensor_model_parallel_size = 4;
    CU_ASSERT_EQUAL(tsr_config_padded_vocab_size(&cfg, 50257), 50688); /* multiple of 512 */
    CU_ASSERT_EQUAL(tsr_config_padded_vocab_size(&cfg, 512), 512);
}

static void test_layout_errors(void)
{
    tsr_config cfg = base();
    cfg.tensor_model_parallel_size = 2;
    cfg.pipeline_model_parallel_size = 2;
    expect_invalid(&cfg, 6, "not divisible by --tensor-model-parallel-size 2");
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 8), TSR_OK);

    cfg = base();
    cfg.global_batch_size = 12;
    cfg.micro_batch_size = 4;
    expect_invalid(&cfg, 2, "--global-batch-size 12 is not divisible");
    cfg.global_batch_size = 16;
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 2), TSR_OK);
    CU_ASSERT_EQUAL(tsr_config_global_batch_size(&cfg, 2), 16);
}

static void test_model_shape_errors(void)
{
    tsr_config cfg = base();
    cfg.hidden_size = 66;
    expect_invalid(&cfg, 1, "--hidden-size 66 is not divisible by --num-attention-heads 4");

    cfg = base();
    cfg.tensor_model_parallel_size = 8;
    expect_invalid(&cfg, 8, "--num-attention-heads 4 is not divisible");

    cfg = base();
    cfg.num_query_groups = 3;
    expect_invalid(&cfg, 1, "--num-query-groups 3");

    cfg = base();
    cfg.num_layers = 3;
    cfg.pipeline_model_parallel_size = 2;
    expect_invalid(&cfg, 2, "--num-layers 3 is not divisible by --pipeline-model-parallel-size");

    cfg = base();
    cfg.num_layers = 8;
    cfg.pipeline_model_parallel_size = 2;
    cfg.num_layers_per_virtual_pipeline_stage = 3;
    expect_invalid(&cfg, 2, "--num-layers-per-virtual-pipeline-stage 3");
    cfg.num_layers_per_virtual_pipeline_stage = 2;
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 2), TSR_OK);

    cfg = base();
    cfg.max_position_embeddings = 16;
    expect_invalid(&cfg, 1, "exceeds --max-position-embeddings");
}

static void test_uneven_pipeline_split(void)
{
    tsr_config cfg = base();
    cfg.num_layers = 10;
    cfg.pipeline_model_parallel_size = 4;
    cfg.decoder_first_pipeline_num_layers = 1;
    cfg.decoder_last_pipeline_num_layers = 1;
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 4), TSR_OK); /* 1 + 4 + 4 + 1 */
    cfg.decoder_last_pipeline_num_layers = 2;
    expect_invalid(&cfg, 4, "do not divide evenly");
}

static void test_parallel_feature_errors(void)
{
    tsr_config cfg = base();
    cfg.sequence_parallel = true;
    expect_invalid(&cfg, 1, "--sequence-parallel needs");

    cfg = base();
    cfg.expert_model_parallel_size = 2;
    expect_invalid(&cfg, 2, "--num-experts");
    cfg.num_experts = 3;
    expect_invalid(&cfg, 2, "--num-experts 3 is not divisible");
    cfg.num_experts = 4;
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 2), TSR_OK);

    cfg = base();
    cfg.overlap_param_gather = true;
    expect_invalid(&cfg, 1, "--use-distributed-optimizer");

    cfg = base();
    cfg.min_lr = 1.0;
    expect_invalid(&cfg, 1, "--min-lr");
}

/* --train-iters 0 computes no learning rate: a warmup longer than it is
 * fine unless --lr-decay-iters is given too */
static void test_warmup_against_the_decay(void)
{
    tsr_config cfg = base();
    cfg.train_iters = 5;
    cfg.lr_warmup_iters = 10;
    expect_invalid(&cfg, 1, "--lr-warmup-iters 10 is longer than the decay (5 iterations)");
    cfg.train_iters = 0;
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 1), TSR_OK);
    cfg.lr_decay_iters = 8;
    expect_invalid(&cfg, 1, "--lr-warmup-iters 10 is longer than the decay (8 iterations)");
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_defaults_are_valid_on_any_world_size),
    TSR_TEST(test_presets),
    TSR_TEST(test_swiglu_default_width),
    TSR_TEST(test_vocab_padding_follows_megatron),
    TSR_TEST(test_layout_errors),
    TSR_TEST(test_model_shape_errors),
    TSR_TEST(test_uneven_pipeline_split),
    TSR_TEST(test_parallel_feature_errors),
    TSR_TEST(test_warmup_against_the_decay),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("config", cases)};
    return tsr_test_main(suites, 1);
}
