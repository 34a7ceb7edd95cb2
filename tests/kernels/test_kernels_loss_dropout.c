/*
 * test_kernels_loss_dropout.c - the four-step cross-entropy (against
 * log-softmax in double, finite differences, vocabulary slices reduced
 * between the steps, masked rows, large logits) and the position-keyed
 * dropout (p = 0 identity, drop rate and scaling, the mask's index rule,
 * the same mask when a tensor is split by samples or positions, backward).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "harness.h"
#include "kernel_check.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

/* ---- cross-entropy ------------------------------------------------------- */

typedef struct ce_ctx {
    const float *logits;
    const int32_t *targets;
    float *row_max, *sumexp, *target_logit;
    int64_t n, v;
} ce_ctx;

static void ce_fwd(void *p, float *loss)
{
    ce_ctx *c = p;
    tsr_ce_row_max(c->row_max, c->logits, c->n, c->v);
    tsr_ce_sumexp_target(c->sumexp, c->target_logit, c->logits, c->row_max, c->targets, c->n,
                         c->v, 0);
    tsr_ce_loss(loss, c->sumexp, c->row_max, c->target_logit, c->n);
}

static void test_ce_matches_log_softmax_and_gradient(void)
{
    int64_t n = 6, v = 77;
    int32_t targets[6] = {0, 76, 13, 40, 40, 5};
    float *logits = kc_alloc(n * v), *grad = kc_alloc(n * v), *loss = kc_alloc(n);
    float *mx = kc_alloc(n), *se = kc_alloc(n), *tl = kc_alloc(n);
    float dloss[6] = {0.5f, 1.0f, 0.0f, 0.25f, 2.0f, 1.0f}; /* row 2 masked */
    kc_fill_normal(logits, n * v, 100, 0, 3.0f);
    ce_ctx c = {logits, targets, mx, se, tl, n, v};
    ce_fwd(&c, loss);
    for (int64_t i = 0; i < n; i++) {
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < v; j++)
            m = logits[i * v + j] > m ? logits[i * v + j] : m;
        for (int64_t j = 0; j < v; j++)
            s += exp(logits[i * v + j] - m);
        double ref = -(logits[i * v + targets[i]] - m - log(s));
        TSR_ASSERT_REL(loss[i], ref, 1e-5);
    }
    memcpy(grad, logits, sizeof(float) * (size_t)(n * v));
    tsr_ce_logits_to_grad(grad, mx, se, targets, dloss, n, v, 0);
    for (int64_t j = 0; j < v; j++)
        CU_ASSERT_EQUAL(grad[2 * v + j], 0.0f);
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < v; j++)
            s += grad[i * v + j];
        CU_ASSERT_TRUE(fabs(s) < 1e-5); /* softmax - onehot sums to zero */
    }
    CU_ASSERT_TRUE(kc_grad_check(&c, ce_fwd, logits, n * v, grad, dloss, n, 1000, 1e-2f,
                                 "cross-entropy") < KC_FD_TOL);
    free(logits), free(grad), free(loss), free(mx), free(se), free(tl);
}

/* Two vocabulary slices, reduced between the steps as a tensor-parallel
 * caller does, give the unsliced losses and gradients. */
static void test_ce_vocab_slices(void)
{
    int64_t n = 5, v = 90, split = 37;
    int32_t targets[5] = {3, 36, 37, 89, 50};
    float dloss[5] = {1, 1, 0.5f, 1, 0};
    float *logits = kc_alloc(n * v), *a = kc_alloc(n * split), *b = kc_alloc(n * (v - split));
    float mx[5], se[5], tl[5], loss[5];
    float ma[5], mb[5], sa[5], sb[5], ta[5], tb[5], m[5], s[5], t[5], lsl[5];
    kc_fill_normal(logits, n * v, 110, 0, 2.0f);
    for (int64_t i = 0; i < n; i++) {
        memcpy(a + i * split, logits + i * v, sizeof(float) * (size_t)split);
        memcpy(b + i * (v - split), logits + i * v + split, sizeof(float) * (size_t)(v - split));
    }
    tsr_ce_row_max(mx, logits, n, v);
    tsr_ce_sumexp_target(se, tl, logits, mx, targets, n, v, 0);
    tsr_ce_loss(loss, se, mx, tl, n);
    tsr_ce_logits_to_grad(logits, mx, se, targets, dloss, n, v, 0);

    tsr_ce_row_max(ma, a, n, split);
    tsr_ce_row_max(mb, b, n, v - split);
    for (int i = 0; i < 5; i++)
        m[i] = ma[i] > mb[i] ? ma[i] : mb[i]; /* all-reduce max */
    tsr_ce_sumexp_target(sa, ta, a, m, targets, n, split, 0);
    tsr_ce_sumexp_target(sb, tb, b, m, targets, n, v - split, split);
    for (int i = 0; i < 5; i++)
        s[i] = sa[i] + sb[i], t[i] = ta[i] + tb[i]; /* all-reduce sum */
    tsr_ce_loss(lsl, s, m, t, n);
    tsr_ce_logits_to_grad(a, m, s, targets, dloss, n, split, 0);
    tsr_ce_logits_to_grad(b, m, s, targets, dloss, n, v - split, split);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(m[i], mx[i]);
        CU_ASSERT_EQUAL(t[i], tl[i]);
        TSR_ASSERT_REL(lsl[i], loss[i], 1e-6);
    }
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < split; j++)
            CU_ASSERT_TRUE(fabsf(a[i * split + j] - logits[i * v + j]) <= 1e-7f);
        for (int64_t j = split; j < v; j++)
            CU_ASSERT_TRUE(fabsf(b[i * (v - split) + j - split] - logits[i * v + j]) <= 1e-7f);
    }
    free(logits), free(a), free(b);
}

static void test_ce_large_logits_are_stable(void)
{
    float logits[3] = {1000.0f, 1001.0f, -1000.0f}, mx, se, tl, loss, dl = 1.0f;
    int32_t target = 0;
    tsr_ce_row_max(&mx, logits, 1, 3);
    tsr_ce_sumexp_target(&se, &tl, logits, &mx, &target, 1, 3, 0);
    tsr_ce_loss(&loss, &se, &mx, &tl, 1);
    double ref = 1.0 + log(1.0 + exp(-1.0));
    TSR_ASSERT_REL(loss, ref, 1e-5);
    tsr_ce_logits_to_grad(logits, &mx, &se, &target, &dl, 1, 3, 0);
    TSR_ASSERT_REL(logits[0], 1.0 / (1.0 + exp(1.0)) - 1.0, 1e-5);
    CU_ASSERT_EQUAL(logits[2], 0.0f);
}

static void test_ce_deterministic_across_threads(void)
{
    int64_t n = 40, v = 5003;
    float *logits = kc_alloc(n * v), *g1 = kc_alloc(n * v), *g2 = kc_alloc(n * v);
    int32_t targets[40];
    float dloss[40], mx[2][40], se[2][40], tl[2][40];
    for (int i = 0; i < 40; i++)
        targets[i] = (int32_t)(i * 97 % v), dloss[i] = 1.0f / 40;
    kc_fill_normal(logits, n * v, 120, 0, 2.0f);
    memcpy(g1, logits, sizeof(float) * (size_t)(n * v));
    memcpy(g2, logits, sizeof(float) * (size_t)(n * v));
    float *g[2] = {g1, g2};
    int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r + 1);
        tsr_ce_row_max(mx[r], g[r], n, v);
        tsr_ce_sumexp_target(se[r], tl[r], g[r], mx[r], targets, n, v, 0);
        tsr_ce_logits_to_grad(g[r], mx[r], se[r], targets, dloss, n, v, 0);
    }
    omp_set_num_threads(saved);
    CU_ASSERT_EQUAL(memcmp(se[0], se[1], sizeof se[0]), 0);
    CU_ASSERT_EQUAL(memcmp(g1, g2, sizeof(float) * (size_t)(n * v)), 0);
    free(logits), free(g1), free(g2);
}

/* ---- dropout --------------------------------------------------------------- */

static tsr_dropout make_dropout(float p, int64_t t_global)
{
    tsr_dropout dp = {0};
    dp.p = p;
    dp.key = tsr_rng_key_mix(tsr_rng_key(1234, "hidden dropout"), 7);
    dp.t_global = t_global;
    return dp;
}

static void test_dropout_identity_when_off(void)
{
    int64_t n = 2 * 9 * 33;
    float *x = kc_alloc(n), *y = kc_alloc(n), *dx = kc_alloc(n);
    kc_fill_normal(x, n, 130, 0, 1);
    tsr_dropout dp = make_dropout(0.0f, 9);
    tsr_dropout_forward(y, x, 2, 9, 33, &dp);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof(float) * (size_t)n), 0);
    tsr_dropout_forward(y, x, 2, 9, 33, NULL);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof(float) * (size_t)n), 0);
    tsr_dropout_backward(dx, x, 2, 9, 33, &dp);
    tsr_dropout_backward(dx, x, 2, 9, 33, &dp);
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(dx[i], 2.0f * x[i]);
    free(x), free(y), free(dx);
}

static void test_dropout_rate_scale_and_index_rule(void)
{
    int64_t b = 4, t = 128, c = 500, n = b * t * c;
    float *x = kc_alloc(n), *y = kc_alloc(n);
    kc_fill_uniform(x, n, 140, 0.5f, 1.5f); /* never zero */
    tsr_dropout dp = make_dropout(0.3f, 256);
    dp.sample_offset = 3;
    dp.t_offset = 100;
    tsr_dropout_forward(y, x, b, t, c, &dp);
    int64_t dropped = 0;
    float scale = 1.0f / (1.0f - 0.3f);
    int index_rule_holds = 1;
    for (int64_t s = 0; s < b; s++)
        for (int64_t p = 0; p < t; p++)
            for (int64_t j = 0; j < c; j++) {
                int64_t i = (s * t + p) * c + j;
                uint64_t g = (uint64_t)(((3 + s) * 256 + 100 + p) * c + j);
                int drop = tsr_rng_uniform(dp.key, g) < 0.3f;
                if (drop != (y[i] == 0.0f))
                    index_rule_holds = 0;
                if (drop)
                    dropped++;
                else if (y[i] != x[i] * scale)
                    index_rule_holds = 0;
            }
    CU_ASSERT_TRUE(index_rule_holds);
    double rate = (double)dropped / (double)n;
    /* 256000 draws: the standard deviation of the rate is 0.0009 */
    CU_ASSERT_TRUE(fabs(rate - 0.3) < 0.005);
    free(x), free(y);
}

typedef struct drop_ctx {
    const float *x;
    const tsr_dropout *dp;
    int64_t b, t, c;
} drop_ctx;

static void drop_fwd(void *p, float *out)
{
    drop_ctx *d = p;
    tsr_dropout_forward(out, d->x, d->b, d->t, d->c, d->dp);
}

static void test_dropout_layout_independent_and_backward(void)
{
    int64_t b = 2, t = 10, c = 24, n = b * t * c;
    float *x = kc_alloc(n), *full = kc_alloc(n), *part = kc_alloc(n), *dout = kc_alloc(n);
    float *dx = kc_alloc(n);
    kc_fill_normal(x, n, 150, 0, 1);
    kc_fill_normal(dout, n, 151, 0, 1);
    tsr_dropout dp = make_dropout(0.5f, t);
    tsr_dropout_forward(full, x, b, t, c, &dp);
    /* split by samples: sample 1 alone with sample_offset 1 */
    tsr_dropout ds = dp;
    ds.sample_offset = 1;
    tsr_dropout_forward(part, x + t * c, 1, t, c, &ds);
    CU_ASSERT_EQUAL(memcmp(part, full + t * c, sizeof(float) * (size_t)(t * c)), 0);
    /* split by positions (sequence parallel): rows [4, 10) of each sample */
    tsr_dropout dt = dp;
    dt.t_offset = 4;
    for (int64_t s = 0; s < b; s++) {
        ds.sample_offset = s;
        dt.sample_offset = s;
        tsr_dropout_forward(part, x + (s * t + 4) * c, 1, 6, c, &dt);
        CU_ASSERT_EQUAL(memcmp(part, full + (s * t + 4) * c, sizeof(float) * (size_t)(6 * c)), 0);
    }
    /* in place */
    memcpy(part, x, sizeof(float) * (size_t)n);
    tsr_dropout_forward(part, part, b, t, c, &dp);
    CU_ASSERT_EQUAL(memcmp(part, full, sizeof(float) * (size_t)n), 0);
    /* backward: the same mask and scale, accumulated */
    tsr_dropout_backward(dx, dout, b, t, c, &dp);
    drop_ctx d = {x, &dp, b, t, c};
    CU_ASSERT_TRUE(kc_grad_check(&d, drop_fwd, x, n, dx, dout, n, 1000, 1e-2f, "dropout") <
                   KC_FD_TOL);
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(dx[i], full[i] == 0.0f ? 0.0f : dout[i] * 2.0f);
    free(x), free(full), free(part), free(dout), free(dx);
}

static const tsr_test_case loss_dropout_cases[] = {
    TSR_TEST(test_ce_matches_log_softmax_and_gradient),
    TSR_TEST(test_ce_vocab_slices),
    TSR_TEST(test_ce_large_logits_are_stable),
    TSR_TEST(test_ce_deterministic_across_threads),
    TSR_TEST(test_dropout_identity_when_off),
    TSR_TEST(test_dropout_rate_scale_and_index_rule),
    TSR_TEST(test_dropout_layout_independent_and_backward),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("kernels_loss_dropout", loss_dropout_cases)};
    return tsr_test_main(suites, 1);
}
