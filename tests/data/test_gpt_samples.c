/*
 * test_gpt_samples.c - --split as Megatron computes it, the keyed shuffle,
 * packing of documents into samples, Megatron's blending rule and the
 * --data-path grammar. Expected values are worked out by hand in the
 * comments from Megatron's definitions.
 */
#include <stdlib.h>
#include <string.h>

#include "data/blend.h"
#include "data/gpt_samples.h"
#include "harness.h"

static void expect_bounds(const char *split, int64_t docs, int64_t b0, int64_t b1, int64_t b2,
                          int64_t b3)
{
    double f[3];
    CU_ASSERT_EQUAL_FATAL(tsr_split_parse(split, f), TSR_OK);
    int64_t b[4];
    tsr_split_bounds(f, docs, b);
    CU_ASSERT_EQUAL(b[0], b0);
    CU_ASSERT_EQUAL(b[1], b1);
    CU_ASSERT_EQUAL(b[2], b2);
    CU_ASSERT_EQUAL(b[3], b3);
}

static void test_split_bounds_match_megatron(void)
{
    expect_bounds("969,30,1", 1000, 0, 969, 999, 1000);
    expect_bounds("969/30/1", 1000, 0, 969, 999, 1000);
    /* thirds of 10: round(3.33) = 3 three times = 9, one short, so every
     * bound after the first moves up by one */
    expect_bounds("1,1,1", 10, 0, 4, 7, 10);
    /* halves of 5: round(2.5) = 2 (half to even), 4 in all, shifted by 1 */
    expect_bounds("1,1", 5, 0, 3, 5, 5);
    expect_bounds("100", 7, 0, 7, 7, 7);
    expect_bounds("98,2,0", 3, 0, 3, 3, 3);
    /* thirds of 2: 1+1+1 = 3, one too many: train ends up empty */
    expect_bounds("1,1,1", 2, 0, 0, 1, 2);
    expect_bounds("0,1,0", 4, 0, 0, 4, 4);
    /* halves of 3: 0 + 2 + 2 = 4, one too many: Megatron's 0,-1,1,3 would
     * give train a negative range; it is clamped to empty */
    expect_bounds("0,1,1", 3, 0, 0, 1, 3);
}

static void test_split_rejects_bad_text(void)
{
    static const char *const bad[] = {"", "a,b", "1,2,3,4", "-1,2", "0,0,0", "1;2", "1,,2",
                                      "inf,1"};
    double f[3];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(tsr_split_parse(bad[i], f), TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--split"));
    }
}

static void test_shuffle_is_a_bijection(void)
{
    static const uint64_t sizes[] = {1, 2, 3, 5, 16, 17, 100, 1000, 4097};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        unsigned char *seen = calloc(n, 1);
        int moved = 0;
        for (uint64_t x = 0; x < n; x++) {
            uint64_t y = tsr_shuffle_index(0x1234, n, x);
            CU_ASSERT_TRUE_FATAL(y < n);
            seen[y]++;
            moved += y != x;
        }
        for (uint64_t x = 0; x < n; x++)
            CU_ASSERT_EQUAL(seen[x], 1);
        if (n >= 16)
            CU_ASSERT_TRUE(moved > (int)(n / 2)); /* it does shuffle */
        free(seen);
    }
    CU_ASSERT_NOT_EQUAL(tsr_shuffle_index(1, 1000, 7), tsr_shuffle_index(2, 1000, 7));
}

/* A token source in memory: token value = 1000 x document + position, so
 * every token says where it came from. */
typedef struct mem_source {
    tsr_token_source base;
    const int64_t *lengths;
    int reads;
} mem_source;

static int64_t mem_length(const tsr_token_source *src, int64_t doc)
{
    return ((const mem_source *)(const void *)src)->lengths[doc];
}

static tsr_status mem_read(const tsr_token_source *src, int64_t doc, int64_t offset,
                           int64_t count, int32_t *out)
{
    const mem_source *m = (const mem_source *)(const void *)src;
    CU_ASSERT_TRUE(doc >= 0 && doc < src->documents);
    CU_ASSERT_TRUE(offset >= 0 && count >= 1 && offset + count <= m->lengths[doc]);
    for (int64_t i = 0; i < count; i++)
        out[i] = (int32_t)(1000 * doc + offset + i);
    return TSR_OK;
}

static void mem_destroy(tsr_token_source *src)
{
    (void)src;
}

static const tsr_token_source_ops mem_ops = {mem_length, mem_read, mem_destroy, NULL};

/* lengths include empty documents and ones longer than a sample */
static const int64_t doc_lengths[] = {5, 0, 12, 1, 7, 30, 0, 3, 9, 2, 16, 4};
#define NDOCS ((int64_t)(sizeof doc_lengths / sizeof doc_lengths[0]))

static mem_source make_source(void)
{
    mem_source m = {{&mem_ops, "memory", NDOCS}, doc_lengths, 0};
    return m;
}

enum { T = 8 };

static void test_samples_tile_each_epoch(void)
{
    mem_source m = make_source();
    tsr_gpt_samples *s = NULL;
    /* documents 2..10: 12+1+7+30+0+3+9+2+16 = 80 tokens, (80-1)/8 = 9 samples */
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_create(&m.base, 2, 11, T, 42, "test", &s), TSR_OK);
    CU_ASSERT_EQUAL(tsr_gpt_samples_tokens(s), 80);
    CU_ASSERT_EQUAL(tsr_gpt_samples_per_epoch(s), 9);
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[11][32];
        memset(seen, 0, sizeof seen);
        for (int64_t i = 0; i < 9; i++) {
            int32_t tok[T + 1];
            CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_get(s, epoch * 9 + i, tok), TSR_OK);
            for (int k = 0; k <= T; k++) {
                int doc = tok[k] / 1000, pos = tok[k] % 1000;
                CU_ASSERT_TRUE_FATAL(doc >= 2 && doc <= 10 && pos < doc_lengths[doc]);
                if (k < T)
                    seen[doc][pos]++;
                /* inside a document, consecutive tokens are consecutive */
                if (k > 0 && tok[k] / 1000 == tok[k - 1] / 1000)
                    CU_ASSERT_EQUAL(tok[k], tok[k - 1] + 1);
                /* a new document starts at its first token */
                if (k > 0 && tok[k] / 1000 != tok[k - 1] / 1000) {
                    CU_ASSERT_EQUAL(pos, 0);
                    CU_ASSERT_EQUAL(tok[k - 1] % 1000, doc_lengths[tok[k - 1] / 1000] - 1);
                }
            }
        }
        /* 9 samples x 8 targets' inputs: 72 distinct tokens, none twice */
        int covered = 0;
        for (int d = 0; d < 11; d++)
            for (int p = 0; p < 32; p++) {
                CU_ASSERT_TRUE(seen[d][p] <= 1);
                covered += seen[d][p];
            }
        CU_ASSERT_EQUAL(covered, 72);
    }
    tsr_gpt_samples_destroy(s);
}

static void test_sample_i_does_not_depend_on_access_order(void)
{
    mem_source m = make_source();
    tsr_gpt_samples *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_create(&m.base, 0, NDOCS, T, 7, "a", &a), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_create(&m.base, 0, NDOCS, T, 7, "b", &b), TSR_OK);
    enum { N = 60 };
    int32_t forward[N][T + 1], other[T + 1];
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(tsr_gpt_samples_get(a, i, forward[i]), TSR_OK);
    for (int k = 0; k < N; k++) { /* a scrambled order that jumps across epochs */
        int i = (k * 37 + 11) % N;
        CU_ASSERT_EQUAL(tsr_gpt_samples_get(b, i, other), TSR_OK);
        CU_ASSERT_EQUAL(memcmp(other, forward[i], sizeof other), 0);
    }
    /* epochs are reshuffled: epoch 1 is not epoch 0 again */
    int64_t per = tsr_gpt_samples_per_epoch(a);
    int same = 1;
    for (int64_t i = 0; i < per && i + per < N; i++)
        same &= memcmp(forward[i], forward[i + per], sizeof other) == 0;
    CU_ASSERT_FALSE(same);
    tsr_gpt_samples_destroy(a);
    tsr_gpt_samples_destroy(b);
}

static void test_seed_changes_the_order(void)
{
    mem_source m = make_source();
    tsr_gpt_samples *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_create(&m.base, 0, NDOCS, T, 1, "a", &a), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_create(&m.base, 0, NDOCS, T, 2, "b", &b), TSR_OK);
    int differ = 0;
    for (int i = 0; i < 10; i++) {
        int32_t x[T + 1], y[T + 1];
        tsr_gpt_samples_get(a, i, x);
        tsr_gpt_samples_get(b, i, y);
        differ += memcmp(x, y, sizeof x) != 0;
    }
    CU_ASSERT_TRUE(differ > 5);
    tsr_gpt_samples_destroy(a);
    tsr_gpt_samples_destroy(b);
}

static void test_too_few_tokens_is_a_clear_error(void)
{
    mem_source m = make_source();
    tsr_gpt_samples *s = NULL;
    /* documents 0..1 hold 5 tokens; a sample of 8 needs 9 */
    CU_ASSERT_EQUAL(tsr_gpt_samples_create(&m.base, 0, 2, T, 1, "split 'valid'", &s),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "split 'valid' of memory holds 5 tokens"));
    CU_ASSERT_EQUAL(tsr_gpt_samples_create(&m.base, 3, 3, T, 1, "empty", &s),
                    TSR_ERR_INVALID_ARG);
    /* exactly seq_length + 1 tokens: one sample */
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_samples_create(&m.base, 2, 3, 11, 1, "one", &s), TSR_OK);
    CU_ASSERT_EQUAL(tsr_gpt_samples_per_epoch(s), 1);
    tsr_gpt_samples_destroy(s);
}

static void test_blend_follows_megatron_greedy_rule(void)
{
    /* weights 0.3, 0.7; at sample i the path with the largest
     * w x max(i,1) - count goes next (worked by hand):
     * i: 0 1 2 3 4 5 6 7 8 9 -> path 1 0 1 1 0 1 1 0 1 1 */
    static const int paths[10] = {1, 0, 1, 1, 0, 1, 1, 0, 1, 1};
    static const int64_t index[10] = {0, 0, 1, 2, 1, 3, 4, 2, 5, 6};
    double w[2] = {0.3, 0.7};
    tsr_blend *b = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_blend_create(w, 2, &b), TSR_OK);
    for (int i = 0; i < 10; i++) {
        int p = -1;
        int64_t k = -1;
        CU_ASSERT_EQUAL(tsr_blend_lookup(b, i, &p, &k), TSR_OK);
        CU_ASSERT_EQUAL(p, paths[i]);
        CU_ASSERT_EQUAL(k, index[i]);
    }
    tsr_blend_destroy(b);
}

static void test_blend_is_random_access_and_proportional(void)
{
    double w[3] = {0.2, 0.5, 0.3};
    tsr_blend *seq = NULL, *jump = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_blend_create(w, 3, &seq), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_blend_create(w, 3, &jump), TSR_OK);
    enum { N = 20000 };
    int *path = malloc(N * sizeof *path);
    int64_t *idx = malloc(N * sizeof *idx), counts[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(tsr_blend_lookup(seq, i, &path[i], &idx[i]), TSR_OK);
        CU_ASSERT_EQUAL(idx[i], counts[path[i]]); /* per-path indices count up */
        counts[path[i]]++;
    }
    for (int d = 0; d < 3; d++) /* the greedy rule never falls a sample behind */
        CU_ASSERT_TRUE(llabs(counts[d] - (long long)(w[d] * N + 0.5)) <= 1);
    static const int probes[] = {N - 1, 0, 4095, 4096, 12345, 77, 8191, 8192, 19999, 5};
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
        int p = -1;
        int64_t i = -1;
        CU_ASSERT_EQUAL(tsr_blend_lookup(jump, probes[k], &p, &i), TSR_OK);
        CU_ASSERT_EQUAL(p, path[probes[k]]);
        CU_ASSERT_EQUAL(i, idx[probes[k]]);
    }
    free(path);
    free(idx);
    tsr_blend_destroy(seq);
    tsr_blend_destroy(jump);
}

static void test_data_path_grammar(void)
{
    tsr_data_path dp;
    CU_ASSERT_EQUAL_FATAL(tsr_data_path_parse("corpus_text_document", &dp), TSR_OK);
    CU_ASSERT_EQUAL(dp.count, 1);
    CU_ASSERT_STRING_EQUAL(dp.paths[0], "corpus_text_document");
    CU_ASSERT_EQUAL(dp.weights[0], 1.0);
    tsr_data_path_free(&dp);
    CU_ASSERT_EQUAL_FATAL(tsr_data_path_parse(" 0.3 a/b_text_document\t0.7  c.h5 ", &dp),
                          TSR_OK);
    CU_ASSERT_EQUAL(dp.count, 2);
    CU_ASSERT_STRING_EQUAL(dp.paths[0], "a/b_text_document");
    CU_ASSERT_STRING_EQUAL(dp.paths[1], "c.h5");
    TSR_ASSERT_REL(dp.weights[0], 0.3, 1e-15);
    TSR_ASSERT_REL(dp.weights[1], 0.7, 1e-15);
    tsr_data_path_free(&dp);
    CU_ASSERT_EQUAL_FATAL(tsr_data_path_parse("2 a 2 b 4 c", &dp), TSR_OK);
    CU_ASSERT_EQUAL(dp.count, 3);
    CU_ASSERT_EQUAL(dp.weights[2], 0.5);
    tsr_data_path_free(&dp);
    static const char *const bad[] = {"a b", "0.3 a 0.7", "-1 a 2 b", "0 a 1 b", "   ",
                                      "x a 1 b", "nan a 1 b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(tsr_data_path_parse(bad[i], &dp), TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "WEIGHT PREFIX"));
    }
}

int main(void)
{
    static const tsr_test_case split[] = {
        TSR_TEST(test_split_bounds_match_megatron),
        TSR_TEST(test_split_rejects_bad_text),
    };
    static const tsr_test_case packing[] = {
        TSR_TEST(test_shuffle_is_a_bijection),
        TSR_TEST(test_samples_tile_each_epoch),
        TSR_TEST(test_sample_i_does_not_depend_on_access_order),
        TSR_TEST(test_seed_changes_the_order),
        TSR_TEST(test_too_few_tokens_is_a_clear_error),
    };
    static const tsr_test_case blend[] = {
        TSR_TEST(test_blend_follows_megatron_greedy_rule),
        TSR_TEST(test_blend_is_random_access_and_proportional),
        TSR_TEST(test_data_path_grammar),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("split", split),
                                            TSR_SUITE("packing", packing),
                                            TSR_SUITE("blend", blend)};
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
