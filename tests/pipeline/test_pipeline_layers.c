/*
 * test_pipeline_layers.c - the split of decoder layers over pipeline
 * stages: hand-written tables for the even, uneven and virtual splits, a
 * sweep that every layer has exactly one owner in virtual-stage order, the
 * embedding/head placement, and agreement with tsr_config_validate().
 */
#include <string.h>

#include "harness.h"
#include "sharding/pipeline_layers.h"

typedef struct split_case {
    const char *name;
    tsr_pp_layer_split split;
    int first[8][3]; /* [rank][chunk] first layer */
    int count[8][3]; /* [rank][chunk] number of layers */
} split_case;

static const split_case cases[] = {
    {"even 12 over 4", {12, 4, 1, 0, 0}, {{0}, {3}, {6}, {9}}, {{3}, {3}, {3}, {3}}},
    {"single stage", {5, 1, 1, 0, 0}, {{0}}, {{5}}},
    {"first stage 2 of 14 over 4", {14, 4, 1, 2, 0}, {{0}, {2}, {6}, {10}}, {{2}, {4}, {4}, {4}}},
    {"last stage 2 of 10 over 3", {10, 3, 1, 0, 2}, {{0}, {4}, {8}}, {{4}, {4}, {2}}},
    {"first 3 last 5 of 16 over 4", {16, 4, 1, 3, 5}, {{0}, {3}, {7}, {11}},
     {{3}, {4}, {4}, {5}}},
    {"first 3 last 4 of 7 over 2", {7, 2, 1, 3, 4}, {{0}, {3}}, {{3}, {4}}},
    /* Megatron's interleaving: chunk c of rank r is virtual stage c*p + r */
    {"16 over 4 x 2 virtual", {16, 4, 2, 0, 0}, {{0, 8}, {2, 10}, {4, 12}, {6, 14}},
     {{2, 2}, {2, 2}, {2, 2}, {2, 2}}},
    {"12 over 2 x 3 virtual", {12, 2, 3, 0, 0}, {{0, 4, 8}, {2, 6, 10}},
     {{2, 2, 2}, {2, 2, 2}}},
    {"8 over 8 x 1", {8, 8, 1, 0, 0}, {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}},
     {{1}, {1}, {1}, {1}, {1}, {1}, {1}, {1}}},
};

static void test_tables(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const split_case *c = &cases[k];
        CU_ASSERT_EQUAL(tsr_pp_layers_validate(&c->split), TSR_OK);
        for (int r = 0; r < c->split.pp_size; r++) {
            for (int ch = 0; ch < c->split.num_chunks; ch++) {
                int first = -1, n = -1;
                CU_ASSERT_EQUAL_FATAL(tsr_pp_layers_range(&c->split, r, ch, &first, &n), TSR_OK);
                if (first != c->first[r][ch] || n != c->count[r][ch]) {
                    CU_FAIL("range differs from the table");
                    fprintf(stderr, "%s: rank %d chunk %d: [%d, +%d), want [%d, +%d)\n", c->name,
                            r, ch, first, n, c->first[r][ch], c->count[r][ch]);
                }
                for (int layer = first; layer < first + n; layer++) {
                    int orank = -1, ochunk = -1;
                    CU_ASSERT_EQUAL(tsr_pp_layers_owner(&c->split, layer, &orank, &ochunk),
                                    TSR_OK);
                    CU_ASSERT_EQUAL(orank, r);
                    CU_ASSERT_EQUAL(ochunk, ch);
                }
            }
        }
    }
}

/* Walking the virtual stages 0 .. p*v-1 visits layers 0 .. L-1 in order,
 * each stage at least one layer. */
static bool covers_in_order(const tsr_pp_layer_split *s)
{
    int next = 0;
    for (int stage = 0; stage < s->pp_size * s->num_chunks; stage++) {
        int r = stage % s->pp_size, c = stage / s->pp_size, first = -1, n = -1;
        if (tsr_pp_layers_range(s, r, c, &first, &n) != TSR_OK || first != next || n < 1)
            return false;
        for (int layer = first; layer < first + n; layer++) {
            int orank = -1, ochunk = -1;
            if (tsr_pp_layers_owner(s, layer, &orank, &ochunk) != TSR_OK || orank != r ||
                ochunk != c)
                return false;
        }
        next = first + n;
    }
    return next == s->num_layers;
}

static void test_every_layer_has_one_owner(void)
{
    int valid = 0;
    for (int L = 1; L <= 24; L++)
        for (int p = 1; p <= 8; p++)
            for (int v = 1; v <= 3; v++)
                for (int first = 0; first <= 5; first++)
                    for (int last = 0; last <= 5; last++) {
                        tsr_pp_layer_split s = {L, p, v, first, last};
                        if (tsr_pp_layers_validate(&s) != TSR_OK)
                            continue;
                        valid++;
                        if (!covers_in_order(&s)) {
                            CU_FAIL("split does not cover the layers in order");
                            fprintf(stderr, "L=%d p=%d v=%d first=%d last=%d\n", L, p, v, first,
                                    last);
                        }
                        /* stages other than the named ends hold the same count */
                        int n0 = -1, f = -1, n = -1;
                        for (int r = 0; r < p; r++) {
                            if ((r == 0 && first > 0) || (r == p - 1 && last > 0))
                                continue;
                            tsr_pp_layers_range(&s, r, 0, &f, &n);
                            if (n0 < 0)
                                n0 = n;
                            CU_ASSERT_EQUAL(n, n0);
                        }
                    }
    CU_ASSERT_TRUE(valid > 300);
}

static void test_embedding_first_head_last(void)
{
    tsr_pp_layer_split s = {16, 4, 2, 0, 0};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 2; c++) {
            CU_ASSERT_EQUAL(tsr_pp_layers_has_embedding(&s, r, c), r == 0 && c == 0);
            CU_ASSERT_EQUAL(tsr_pp_layers_has_head(&s, r, c), r == 3 && c == 1);
        }
    tsr_pp_layer_split one = {4, 1, 1, 0, 0};
    CU_ASSERT_TRUE(tsr_pp_layers_has_embedding(&one, 0, 0));
    CU_ASSERT_TRUE(tsr_pp_layers_has_head(&one, 0, 0));
}

static void expect_invalid(tsr_pp_layer_split s, const char *word)
{
    CU_ASSERT_EQUAL(tsr_pp_layers_validate(&s), TSR_ERR_INVALID_ARG);
    if (strstr(tsr_last_error(), word) == NULL) {
        CU_FAIL("message lacks the expected words");
        fprintf(stderr, "want \"%s\" in: %s\n", word, tsr_last_error());
    }
    int a, b;
    CU_ASSERT_EQUAL(tsr_pp_layers_range(&s, 0, 0, &a, &b), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_layers_owner(&s, 0, &a, &b), TSR_ERR_INVALID_ARG);
}

static void test_bad_splits_are_refused(void)
{
    expect_invalid((tsr_pp_layer_split){10, 4, 1, 0, 0}, "not divisible by");
    expect_invalid((tsr_pp_layer_split){12, 4, 2, 0, 0}, "3 layers per pipeline stage");
    expect_invalid((tsr_pp_layer_split){16, 4, 2, 2, 0}, "cannot be combined");
    expect_invalid((tsr_pp_layer_split){8, 1, 1, 2, 0}, ">= 2");
    expect_invalid((tsr_pp_layer_split){8, 1, 2, 0, 0}, ">= 2");
    expect_invalid((tsr_pp_layer_split){13, 4, 1, 2, 0}, "leaves 11 layers");
    expect_invalid((tsr_pp_layer_split){8, 3, 1, 4, 4}, "leaves 0 layers");
    expect_invalid((tsr_pp_layer_split){7, 2, 1, 3, 3}, "leaves 1 layers");
    expect_invalid((tsr_pp_layer_split){4, 4, 1, 3, 3}, "leaves -2 layers");
    expect_invalid((tsr_pp_layer_split){0, 1, 1, 0, 0}, "--num-layers 0");
    expect_invalid((tsr_pp_layer_split){8, 0, 1, 0, 0}, "--pipeline-model-parallel-size 0");
    expect_invalid((tsr_pp_layer_split){8, 2, 0, 0, 0}, "0 model chunks");
    expect_invalid((tsr_pp_layer_split){8, 2, 1, -1, 0}, "negative");
    CU_ASSERT_EQUAL(tsr_pp_layers_validate(NULL), TSR_ERR_INVALID_ARG);

    tsr_pp_layer_split ok = {8, 2, 1, 0, 0};
    int a, b;
    CU_ASSERT_EQUAL(tsr_pp_layers_range(&ok, 2, 0, &a, &b), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_layers_range(&ok, 0, 1, &a, &b), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_layers_range(&ok, 0, 0, NULL, &b), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_layers_owner(&ok, 8, &a, &b), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_layers_owner(&ok, -1, &a, &b), TSR_ERR_INVALID_ARG);
}

static void test_from_config(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 16;
    cfg.pipeline_model_parallel_size = 4;
    cfg.num_layers_per_virtual_pipeline_stage = 2;
    tsr_pp_layer_split s;
    CU_ASSERT_EQUAL_FATAL(tsr_pp_layers_from_config(&cfg, &s), TSR_OK);
    CU_ASSERT_EQUAL(s.num_chunks, 2);
    CU_ASSERT_EQUAL(s.num_layers, 16);
    CU_ASSERT_EQUAL(s.pp_size, 4);
    cfg.num_layers_per_virtual_pipeline_stage = 0;
    cfg.decoder_first_pipeline_num_layers = 1;
    cfg.decoder_last_pipeline_num_layers = 3;
    CU_ASSERT_EQUAL_FATAL(tsr_pp_layers_from_config(&cfg, &s), TSR_OK);
    CU_ASSERT_EQUAL(s.num_chunks, 1);
    CU_ASSERT_EQUAL(s.first_stage_layers, 1);
    CU_ASSERT_EQUAL(s.last_stage_layers, 3);
    cfg.num_layers_per_virtual_pipeline_stage = 3;
    cfg.decoder_first_pipeline_num_layers = 0;
    cfg.decoder_last_pipeline_num_layers = 0;
    CU_ASSERT_EQUAL(tsr_pp_layers_from_config(&cfg, &s), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--num-layers-per-virtual-pipeline-stage 3"));
}

/* What the configuration check lets through always splits. */
static void test_validated_configs_split(void)
{
    int accepted = 0;
    for (int L = 1; L <= 16; L++)
        for (int p = 1; p <= 4; p++)
            for (int per_virtual = 0; per_virtual <= 3; per_virtual++)
                for (int first = 0; first <= 4; first++)
                    for (int last = 0; last <= 4; last++) {
                        tsr_config cfg;
                        tsr_config_defaults(&cfg);
                        cfg.num_layers = L;
                        cfg.pipeline_model_parallel_size = p;
                        cfg.num_layers_per_virtual_pipeline_stage = per_virtual;
                        cfg.decoder_first_pipeline_num_layers = first;
                        cfg.decoder_last_pipeline_num_layers = last;
                        if (tsr_config_validate(&cfg, p) != TSR_OK)
                            continue;
                        accepted++;
                        tsr_pp_layer_split s;
                        CU_ASSERT_EQUAL(tsr_pp_layers_from_config(&cfg, &s), TSR_OK);
                        CU_ASSERT_TRUE(covers_in_order(&s));
                    }
    CU_ASSERT_TRUE(accepted > 50);
}

static const tsr_test_case split_cases[] = {
    TSR_TEST(test_tables),
    TSR_TEST(test_every_layer_has_one_owner),
    TSR_TEST(test_embedding_first_head_last),
    TSR_TEST(test_bad_splits_are_refused),
    TSR_TEST(test_from_config),
    TSR_TEST(test_validated_configs_split),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("pipeline_layers", split_cases)};
    return tsr_test_main(suites, 1);
}
