/*
 * test_sampling.c - the next-token rule of `tessera generate`
 * (runtime/generate/sampling.c): greedy is the argmax (lowest id among
 * ties); a draw is a pure function of (logits, settings, sample,
 * position); top-k and top-p never draw outside their sets; over 40000
 * draws the frequencies follow softmax(logits / T) within 0.01.
 */
#include <math.h>
#include <stdlib.h>

#include "generate/sampling.h"
#include "harness.h"
#include "tessera/rng.h"

enum { V = 6, DRAWS = 40000 };

static const float logits[V] = {1.0f, 3.0f, 0.5f, 3.0f, -INFINITY, 2.0f};

static tsr_sampling settings(bool greedy, double temperature, int64_t top_k, double top_p)
{
    return (tsr_sampling){greedy, temperature, top_k, top_p, tsr_rng_key(5, "generate")};
}

static void counts_of(const tsr_sampling *s, int64_t *count)
{
    float probs[V];
    int32_t order[V];
    for (int i = 0; i < V; i++)
        count[i] = 0;
    for (int64_t d = 0; d < DRAWS; d++)
        count[tsr_sample_token(logits, V, s, d % 7, d, probs, order)]++;
}

static void test_greedy_is_the_argmax(void)
{
    float probs[V];
    int32_t order[V];
    tsr_sampling g = settings(true, 1.0, 0, 1.0);
    CU_ASSERT_EQUAL(tsr_sample_token(logits, V, &g, 0, 0, probs, order), 1); /* tie 1, 3 */
    tsr_sampling cold = settings(false, 0.0, 0, 1.0), k1 = settings(false, 1.0, 1, 1.0);
    CU_ASSERT_EQUAL(tsr_sample_token(logits, V, &cold, 3, 9, probs, order), 1);
    CU_ASSERT_EQUAL(tsr_sample_token(logits, V, &k1, 3, 9, probs, order), 1);
}

static void test_draws_are_reproducible(void)
{
    float probs[V];
    int32_t order[V];
    tsr_sampling s = settings(false, 1.0, 0, 1.0);
    int differ = 0;
    for (int64_t p = 0; p < 200; p++) {
        int32_t a = tsr_sample_token(logits, V, &s, 2, p, probs, order);
        CU_ASSERT_EQUAL(a, tsr_sample_token(logits, V, &s, 2, p, probs, order));
        differ += a != tsr_sample_token(logits, V, &s, 3, p, probs, order);
    }
    CU_ASSERT_TRUE(differ > 20); /* another sample draws otherwise */
}

static void test_frequencies_follow_the_softmax(void)
{
    for (int k = 0; k < 2; k++) {
        double temperature = k == 0 ? 1.0 : 0.5, sum = 0.0, want[V];
        for (int i = 0; i < V; i++)
            sum += want[i] = isfinite(logits[i]) ? exp(logits[i] / temperature) : 0.0;
        tsr_sampling s = settings(false, temperature, 0, 1.0);
        int64_t count[V];
        counts_of(&s, count);
        for (int i = 0; i < V; i++)
            CU_ASSERT_TRUE(fabs((double)count[i] / DRAWS - want[i] / sum) < 0.01);
        CU_ASSERT_EQUAL(count[4], 0); /* -inf: never */
    }
}

static void test_top_k_and_top_p_cut_the_set(void)
{
    int64_t count[V];
    tsr_sampling k2 = settings(false, 1.0, 2, 1.0);
    counts_of(&k2, count);
    /* the two most likely: ids 1 and 3 (tied), about half each */
    CU_ASSERT_EQUAL(count[0] + count[2] + count[4] + count[5], 0);
    CU_ASSERT_TRUE(fabs((double)count[1] / DRAWS - 0.5) < 0.01);
    /* top-p 0.8: p = (.387, .387, .142, .052, .032): 1 and 3 hold .774 < .8,
     * so 5 joins; renormalised 5 has .142/.916 */
    tsr_sampling p8 = settings(false, 1.0, 0, 0.8);
    counts_of(&p8, count);
    CU_ASSERT_EQUAL(count[0] + count[2] + count[4], 0);
    double e1 = exp(3.0), e5 = exp(2.0);
    CU_ASSERT_TRUE(fabs((double)count[5] / DRAWS - e5 / (2 * e1 + e5)) < 0.01);
    /* top-p below the largest probability: the most likely alone (lowest id) */
    tsr_sampling p1 = settings(false, 1.0, 0, 0.1);
    counts_of(&p1, count);
    CU_ASSERT_EQUAL(count[1], DRAWS);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_greedy_is_the_argmax),
    TSR_TEST(test_draws_are_reproducible),
    TSR_TEST(test_frequencies_follow_the_softmax),
    TSR_TEST(test_top_k_and_top_p_cut_the_set),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("sampling", cases)};
    return tsr_test_main(suites, 1);
}
