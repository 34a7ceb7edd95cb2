/*
 * test_attention_config.c - the attention of each layer from the flags
 * (--attention-pattern with repetition, --window-size, --sparse-*), the
 * FLOPs that count only computed tiles, and the attention rows the data
 * defines: documents ending at the end-of-document token and prefix runs
 * of synthetic:addition, with the targets a prefix query sees taken out
 * of the loss.
 */
#include <math.h>
#include <string.h>

#include "data/dataset.h"
#include "harness.h"
#include "tessera/config.h"
#include "tessera/kernels.h"

static tsr_config base(int layers)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = layers;
    cfg.seq_length = 256;
    return cfg;
}

static tsr_attn_pattern pattern_of(const tsr_config *cfg, int64_t layer)
{
    tsr_attn_mask m;
    CU_ASSERT_EQUAL_FATAL(tsr_config_layer_attention(cfg, layer, &m), TSR_OK);
    return m.pattern;
}

static void test_repetition_expands_per_layer(void)
{
    tsr_config cfg = base(12);
    cfg.window_size = 64;
    cfg.attention_pattern = "(dense,window)*6";
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 1), TSR_OK);
    for (int64_t l = 0; l < 12; l++)
        CU_ASSERT_EQUAL(pattern_of(&cfg, l), l % 2 ? TSR_ATTN_WINDOW : TSR_ATTN_CAUSAL);
    cfg = base(7);
    cfg.window_size = 64;
    cfg.sparse_attention = TSR_SPARSE_STRIDED;
    cfg.attention_pattern = " dense*2 , ((window, sparse)*2, fixed) ";
    CU_ASSERT_EQUAL(tsr_config_validate(&cfg, 1), TSR_OK);
    const tsr_attn_pattern want[] = {TSR_ATTN_CAUSAL,  TSR_ATTN_CAUSAL,  TSR_ATTN_WINDOW,
                                     TSR_ATTN_STRIDED, TSR_ATTN_WINDOW, TSR_ATTN_STRIDED,
                                     TSR_ATTN_FIXED};
    for (int64_t l = 0; l < 7; l++)
        CU_ASSERT_EQUAL(pattern_of(&cfg, l), want[l]);
    tsr_attn_mask m;
    CU_ASSERT_EQUAL(tsr_config_layer_attention(&cfg, 6, &m), TSR_OK);
    CU_ASSERT_EQUAL(m.block, 64);
    CU_ASSERT_EQUAL(m.stride, 256);
}

static void test_uniform_flags(void)
{
    tsr_config cfg = base(3);
    for (int64_t l = 0; l < 3; l++)
        CU_ASSERT_EQUAL(pattern_of(&cfg, l), TSR_ATTN_CAUSAL);
    cfg.window_size = 32;
    tsr_attn_mask m;
    CU_ASSERT_EQUAL(tsr_config_layer_attention(&cfg, 2, &m), TSR_OK);
    CU_ASSERT_EQUAL(m.pattern, TSR_ATTN_WINDOW);
    CU_ASSERT_EQUAL(m.window, 32);
    cfg = base(3);
    cfg.sparse_attention = TSR_SPARSE_FIXED;
    CU_ASSERT_EQUAL(pattern_of(&cfg, 1), TSR_ATTN_FIXED);
}

static void expect_invalid(const tsr_config *cfg, const char *needle)
{
    CU_ASSERT_EQUAL(tsr_config_validate(cfg, 1), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), needle));
}

static void test_errors_name_the_flag(void)
{
    tsr_config cfg = base(4);
    cfg.attention_pattern = "dense*3";
    expect_invalid(&cfg, "has 3 entries for --num-layers 4");
    cfg.attention_pattern = "(dense,dense)*1000000";
    expect_invalid(&cfg, "more than 4 entries");
    cfg.attention_pattern = "dense,,dense*2";
    expect_invalid(&cfg, "an entry name or '(' expected at offset 6");
    cfg.attention_pattern = "dense*4 dense";
    expect_invalid(&cfg, "',' or the end expected");
    cfg = base(2);
    cfg.window_size = 257;
    expect_invalid(&cfg, "--window-size 257 must be from 1 to the sequence length 256");
    cfg = base(2);
    cfg.sparse_attention = TSR_SPARSE_FIXED;
    cfg.sparse_block = 48;
    expect_invalid(&cfg, "--sparse-block 48 does not divide");
    cfg.sparse_block = 64;
    cfg.sparse_stride = 96;
    expect_invalid(&cfg, "--sparse-stride 96 must be a multiple of --sparse-block 64");
}

static void test_flops_count_computed_tiles(void)
{
    tsr_config windowed = base(4);
    windowed.seq_length = 4096;
    windowed.window_size = 256;
    windowed.attention_pattern = "(dense,window)*2";
    double causal = tsr_attention_computed_elements(NULL, 4096);
    CU_ASSERT_DOUBLE_EQUAL(causal, 64.0 * 64.0 * 64.0 * 65.0 / 2.0, 0.5);
    tsr_attn_mask w;
    CU_ASSERT_EQUAL(tsr_config_layer_attention(&windowed, 1, &w), TSR_OK);
    /* window 256: a query block sees the diagonal tile and the four before it
     * (the oldest only in part), except the first four blocks */
    double tiles = 64 * 5 - (4 + 3 + 2 + 1);
    CU_ASSERT_DOUBLE_EQUAL(tsr_attention_computed_elements(&w, 4096), tiles * 4096.0, 0.5);
    tsr_attn_mask partial = {TSR_ATTN_CAUSAL, 0, 0, 0, NULL, NULL, NULL};
    /* 100 = 64 + 36: tiles of 64x64, 36x64 and 36x36 */
    CU_ASSERT_DOUBLE_EQUAL(tsr_attention_computed_elements(&partial, 100),
                           64.0 * 64 + 36.0 * 64 + 36.0 * 36, 0.5);
}

/* A dataset whose every target counts and whose first 5 tokens of each
 * sample are a prefix, token 7 ending documents. */
static tsr_status all_sample(const tsr_dataset *ds, tsr_split split, int64_t index,
                             int32_t *tokens, float *mask)
{
    (void)split;
    for (int i = 0; i <= ds->seq_length; i++)
        tokens[i] = (int32_t)((index + i) % 8);
    for (int i = 0; i < ds->seq_length; i++)
        mask[i] = 1.0f;
    return TSR_OK;
}

static tsr_status first_five(const tsr_dataset *ds, tsr_split split, int64_t index,
                             int32_t *in_prefix)
{
    (void)split, (void)index;
    for (int i = 0; i < ds->seq_length; i++)
        in_prefix[i] = i < 5;
    return TSR_OK;
}

static void test_prefix_targets_leave_the_loss(void)
{
    const tsr_dataset_ops ops = {all_sample, NULL, first_five};
    tsr_dataset ds = {&ops, "test", 8, 12, false, 0, 0, 7, false, false};
    int32_t tokens[13], targets[12], doc[12], lo[12], hi[12];
    float mask[12];
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_batch(&ds, TSR_SPLIT_TRAIN, 4, 1, tokens, targets, mask),
                          TSR_OK);
    CU_ASSERT_EQUAL_FATAL(
        tsr_dataset_attention_rows(&ds, TSR_SPLIT_TRAIN, 4, 1, tokens, mask, doc, lo, hi), TSR_OK);
    /* tokens 4 5 6 7 0 1 ...: the document ends after the 7 at position 3,
     * which also cuts the prefix run into [0, 4) and [4, 5) */
    for (int i = 0; i < 12; i++) {
        CU_ASSERT_EQUAL(doc[i], i < 4 ? 0 : 4);
        CU_ASSERT_EQUAL(lo[i], i < 4 ? 0 : i < 5 ? 4 : 0);
        CU_ASSERT_EQUAL(hi[i], i < 4 ? 4 : i < 5 ? 5 : 0);
        /* queries 0..2 see their targets 1..3 */
        CU_ASSERT_EQUAL(mask[i], i < 3 ? 0.0f : 1.0f);
    }
}

static void test_documents_and_prefixes_of_addition(void)
{
    tsr_config cfg = base(2);
    cfg.data_path = "synthetic:addition:2"; /* "ab+cd=eff\n": 10 tokens */
    cfg.seq_length = 25;
    cfg.prefix_lm = true;
    cfg.reset_attention_mask = true;
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    int32_t tokens[2 * 25 + 1], targets[2 * 25], doc[2 * 25], lo[2 * 25], hi[2 * 25];
    float mask[2 * 25], before[2 * 25];
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 3, 2, tokens, targets, mask),
                          TSR_OK);
    memcpy(before, mask, sizeof mask);
    CU_ASSERT_EQUAL_FATAL(
        tsr_dataset_attention_rows(ds, TSR_SPLIT_TRAIN, 3, 2, tokens, mask, doc, lo, hi), TSR_OK);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 25; i++) {
            int r = b * 25 + i, p = i / 10, in_problem = i % 10;
            /* two problems, then padding that is one more document */
            CU_ASSERT_EQUAL(doc[r], p * 10);
            if (p < 2 && in_problem < 6) { /* "ab+cd=" */
                CU_ASSERT_EQUAL(lo[r], p * 10);
                CU_ASSERT_EQUAL(hi[r], p * 10 + 6);
            } else {
                CU_ASSERT_EQUAL(lo[r], 0);
                CU_ASSERT_EQUAL(hi[r], 0);
            }
            /* the addition's loss already leaves the question out */
            CU_ASSERT_EQUAL(mask[r], before[r]);
        }
    tsr_dataset_close(ds);
    cfg.data_path = "synthetic:random";
    CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--reset-attention-mask needs"));
    cfg.reset_attention_mask = false;
    CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--prefix-lm needs data"));
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_repetition_expands_per_layer),
    TSR_TEST(test_uniform_flags),
    TSR_TEST(test_errors_name_the_flag),
    TSR_TEST(test_flops_count_computed_tiles),
    TSR_TEST(test_documents_and_prefixes_of_addition),
    TSR_TEST(test_prefix_targets_leave_the_loss),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("attention config", cases)};
    return tsr_test_main(suites, 1);
}
