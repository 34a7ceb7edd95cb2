/*
 * test_train_parts.c - the pieces of the training loop that are pure
 * functions: LR schedule, memory plan and arenas, synthetic datasets,
 * metrics formatting, Megatron's FLOPs formula, parameter table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "data/dataset.h"
#include "test_net.h"
#include "gpt_spec.h"
#include "harness.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"

static tsr_config base(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.lr = 1.0;
    cfg.min_lr = 0.1;
    cfg.train_iters = 110;
    cfg.lr_warmup_iters = 10;
    return cfg;
}

static void test_lr_warmup_then_cosine(void)
{
    tsr_config cfg = base();
    cfg.lr_decay_style = TSR_LR_COSINE;
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 1), 0.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 10), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 60), 0.55, 1e-12); /* half way: mean of lr, min */
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 110), 0.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 500), 0.1, 1e-12);
}

static void test_lr_linear_and_constant(void)
{
    tsr_config cfg = base();
    cfg.lr_decay_style = TSR_LR_LINEAR;
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 35), 1.0 - 0.25 * 0.9, 1e-12);
    cfg.lr_decay_style = TSR_LR_CONSTANT;
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 5), 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 100), 1.0, 1e-12);
    cfg.lr_warmup_iters = 0;
    CU_ASSERT_DOUBLE_EQUAL(tsr_lr_at(&cfg, 1), 1.0, 1e-12);
}

static void test_plan_and_arena(void)
{
    tsr_memory_plan plan;
    memset(&plan, 0, sizeof plan);
    tsr_plan_add_floats(&plan, TSR_MEM_PARAMS, 10); /* 40 bytes -> 64 */
    tsr_plan_add_floats(&plan, TSR_MEM_PARAMS, 17); /* 68 bytes -> 128 */
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS], 192);
    CU_ASSERT_EQUAL(tsr_plan_total_bytes(&plan), 192);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&plan), TSR_OK);
    float *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_EQUAL(tsr_plan_take_floats(&plan, TSR_MEM_PARAMS, 10, &a), TSR_OK);
    CU_ASSERT_EQUAL(tsr_plan_take_floats(&plan, TSR_MEM_PARAMS, 17, &b), TSR_OK);
    CU_ASSERT_EQUAL((size_t)a % TSR_ARENA_ALIGN, 0);
    CU_ASSERT_EQUAL((size_t)b % TSR_ARENA_ALIGN, 0);
    CU_ASSERT_EQUAL(b[16], 0.0f); /* zero-filled */
    CU_ASSERT_EQUAL(tsr_plan_take_floats(&plan, TSR_MEM_PARAMS, 1, &c), TSR_ERR_INTERNAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "plan"));
    tsr_plan_release(&plan);
    CU_ASSERT_TRUE(tsr_peak_rss_bytes() > 0);
}

static tsr_dataset *open_dataset(const char *path, int seq)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.data_path = path;
    cfg.seq_length = seq;
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    return ds;
}

static void test_addition_samples_are_correct_sums(void)
{
    tsr_dataset *ds = open_dataset("synthetic:addition", 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ds);
    int32_t tokens[2 * 32 + 1], targets[2 * 32];
    float mask[2 * 32];
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 5, 2, tokens, targets, mask),
                          TSR_OK);
    for (int s = 0; s < 2; s++) {
        int32_t full[33];
        memcpy(full, tokens + s * 32, 32 * sizeof *full);
        full[32] = targets[s * 32 + 31];
        for (int p = 0; p < 2; p++) { /* 13-token problems, 2 per sample */
            const int32_t *q = full + p * 13;
            int a = q[0] * 100 + q[1] * 10 + q[2], b = q[4] * 100 + q[5] * 10 + q[6];
            int c = q[8] + q[9] * 10 + q[10] * 100 + q[11] * 1000; /* reversed */
            CU_ASSERT_EQUAL(q[3], 10);
            CU_ASSERT_EQUAL(q[7], 11);
            CU_ASSERT_EQUAL(q[12], 12);
            CU_ASSERT_EQUAL(a + b, c);
            /* the mask covers the targets at positions 7..11 (answer + newline) */
            for (int j = 0; j < 13; j++)
                CU_ASSERT_EQUAL(mask[s * 32 + p * 13 + j], (j >= 7 && j <= 11) ? 1.0f : 0.0f);
        }
        for (int j = 0; j < 32; j++)
            CU_ASSERT_EQUAL(targets[s * 32 + j], full[j + 1]);
    }
    tsr_dataset_close(ds);
}

static void test_samples_are_deterministic_and_splits_differ(void)
{
    tsr_dataset *ds = open_dataset("synthetic:addition:4", 40);
    int32_t a[41], b[41], v[41], t[40];
    float m[40];
    tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 123, 1, a, t, m);
    tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 123, 1, b, t, m);
    tsr_dataset_batch(ds, TSR_SPLIT_VALID, 123, 1, v, t, m);
    CU_ASSERT_EQUAL(memcmp(a, b, 40 * sizeof *a), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, v, 40 * sizeof *a), 0);
    tsr_dataset_close(ds);
}

static void test_random_dataset_covers_vocab_uniformly(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.data_path = "synthetic:random";
    cfg.vocab_size = 16;
    cfg.seq_length = 63;
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    int counts[16] = {0};
    int32_t tokens[64 * 100 + 1], targets[63 * 100];
    float mask[63 * 100];
    for (int s = 0; s < 100; s++) {
        tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, s, 1, tokens, targets, mask);
        for (int j = 0; j < 63; j++) {
            CU_ASSERT_TRUE(targets[j] >= 0 && targets[j] < 16);
            counts[targets[j]]++;
            CU_ASSERT_EQUAL(mask[j], 1.0f);
        }
    }
    for (int k = 0; k < 16; k++) /* 6300/16 = 394 expected; 5 sigma is ~95 */
        CU_ASSERT_TRUE(counts[k] > 290 && counts[k] < 500);
    tsr_dataset_close(ds);
}

static void test_dataset_errors(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    tsr_dataset *ds = NULL;
    cfg.data_path = "synthetic:nope";
    CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_ERR_INVALID_ARG);
    cfg.data_path = "synthetic:addition:x";
    CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_ERR_INVALID_ARG);
    cfg.data_path = "synthetic:addition:5";
    cfg.seq_length = 8;
    CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--seq-length 8 is too short"));
    CU_ASSERT_PTR_NULL(ds);
}

static void test_metrics_line_and_json(void)
{
    tsr_train_metrics m = {10, 100, 80, 12.5, 1e-3, 8, 2.5, 1.0, 0.75, 0, 1, 5000.0, 0.25, 0.125};
    char line[1024];
    tsr_metrics_format_line(&m, line, sizeof line);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "load balancing loss: 1.250000E-01"));
    m.moe_aux_loss = -1.0; /* a dense model: not printed */
    tsr_metrics_format_line(&m, line, sizeof line);
    CU_ASSERT_PTR_NULL(strstr(line, "load balancing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "iteration       10/     100"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "lm loss: 2.500000E+00"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "number of nan iterations:   1"));
    char path[] = "/tmp/tsr_metrics_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    m.lm_loss = NAN;
    tsr_metrics_write_json(f, &m);
    rewind(f);
    char json[1024] = "";
    CU_ASSERT_PTR_NOT_NULL(fgets(json, sizeof json, f));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"lm_loss\": null"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"iteration\": 10"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"grad_norm\": 0.75"));
    fclose(f);
    remove(path);
}

static void test_megatron_flops_formula(void)
{
    /* GPT-2 124M shape: 12 layers, h 768, s 1024, V 50304 */
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.model = TSR_PRESET_GPT2;
    tsr_config_apply_preset(&cfg);
    tsr_net_dims d = tsr_net_dims_from_config(&cfg, 50257, 0);
    CU_ASSERT_EQUAL(d.padded_vocab, 50304);
    double h = 768, s = 1024, L = 12;
    /* Megatron's formula, except that the attention scores count the
     * computed 64x64 tiles of the causal mask (16 x 17 / 2 of 16 x 16)
     * instead of the full s x s square */
    double scores = 64.0 * 64.0 * 16.0 * 17.0 / 2.0;
    double expected = 12 * s * L * h * h * ((1 + 1) + 4 + 50304 / (2 * L * h)) +
                      12 * h * L * scores;
    CU_ASSERT_DOUBLE_EQUAL(tsr_gpt_flops_per_sample(&cfg, d.padded_vocab) / expected, 1.0, 1e-12);
    /* a window of 128 keys: every 64-query block computes 3 tiles, the
     * first two blocks fewer */
    cfg.window_size = 128;
    double window = 64.0 * 64.0 * (16 * 3 - 2 - 1);
    expected = 12 * s * L * h * h * ((1 + 1) + 4 + 50304 / (2 * L * h)) + 12 * h * L * window;
    CU_ASSERT_DOUBLE_EQUAL(tsr_gpt_flops_per_sample(&cfg, d.padded_vocab) / expected, 1.0, 1e-12);
}

static void test_parameter_count_of_gpt2_small(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.model = TSR_PRESET_GPT2;
    tsr_config_apply_preset(&cfg);
    tsr_test_net model;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&model, &cfg, 50257, NULL, 0), TSR_OK);
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(model.net, &count);
    double total = 0;
    for (size_t i = 0; i < count; i++)
        total += (double)(table[i].rows * table[i].cols);
    /* GPT-2 small with the vocabulary padded to 50304: 124,475,904 */
    CU_ASSERT_DOUBLE_EQUAL(total, 124475904.0, 0.5);
    CU_ASSERT_STRING_EQUAL(table[0].name, "embedding.word_embeddings.weight");
    tsr_test_net_free(&model);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_lr_warmup_then_cosine),
    TSR_TEST(test_lr_linear_and_constant),
    TSR_TEST(test_plan_and_arena),
    TSR_TEST(test_addition_samples_are_correct_sums),
    TSR_TEST(test_samples_are_deterministic_and_splits_differ),
    TSR_TEST(test_random_dataset_covers_vocab_uniformly),
    TSR_TEST(test_dataset_errors),
    TSR_TEST(test_metrics_line_and_json),
    TSR_TEST(test_megatron_flops_formula),
    TSR_TEST(test_parameter_count_of_gpt2_small),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("train_parts", cases)};
    return tsr_test_main(suites, 1);
}
