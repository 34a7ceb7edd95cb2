/*
 * test_kernels_attention.c - the tiled causal attention against a naive
 * full-softmax reference: values and lse for several shapes (partial
 * tiles, head sizes that need padding, grouped query heads), the causal
 * mask, GQA as replicated heads, finite-difference gradients, accumulate
 * semantics, NULL gradients, determinism across runs and thread counts,
 * and attention dropout keyed by global (sample, head, i, j).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "harness.h"
#include "kernel_check.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

typedef struct attn_case {
    int64_t b, t, hq, hkv, d;
    float *q, *k, *v, *out, *lse, *scratch;
    const tsr_dropout *dropout;
} attn_case;

static void attn_alloc(attn_case *a, int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
                       uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->b = b, a->t = t, a->hq = hq, a->hkv = hkv, a->d = d;
    a->q = kc_alloc(b * t * hq * d);
    a->k = kc_alloc(b * t * hkv * d);
    a->v = kc_alloc(b * t * hkv * d);
    a->out = kc_alloc(b * t * hq * d);
    a->lse = kc_alloc(b * hq * t);
    /* sized for more threads than any test sets */
    int saved = omp_get_max_threads();
    omp_set_num_threads(4);
    a->scratch = kc_alloc((int64_t)tsr_attention_scratch_floats(t, d));
    omp_set_num_threads(saved);
    kc_fill_normal(a->q, b * t * hq * d, seed, 0, 1.0f);
    kc_fill_normal(a->k, b * t * hkv * d, seed + 1, 0, 1.0f);
    kc_fill_normal(a->v, b * t * hkv * d, seed + 2, 0, 1.0f);
}

static void attn_free(attn_case *a)
{
    free(a->q), free(a->k), free(a->v), free(a->out), free(a->lse), free(a->scratch);
}

static void attn_fwd(void *p, float *out)
{
    attn_case *a = p;
    tsr_attention_forward(out, a->lse, a->q, a->k, a->v, a->b, a->t, a->hq, a->hkv, a->d, NULL,
                          a->dropout, a->scratch);
}

static float keep_scale(const tsr_dropout *dp, int64_t s, int64_t h, int64_t i, int64_t j)
{
    if (dp == NULL || dp->p <= 0.0f)
        return 1.0f;
    uint64_t idx = (uint64_t)((((dp->sample_offset + s) * dp->heads_global + dp->head_offset + h) *
                                   dp->t_global +
                               dp->t_offset + i) *
                                  dp->t_global +
                              dp->t_offset + j);
    return tsr_rng_uniform(dp->key, idx) >= dp->p ? 1.0f / (1.0f - dp->p) : 0.0f;
}

/* out and lse by the definition, in double, one full score row at a time */
static void naive_attention(double *out, double *lse, const attn_case *a)
{
    int64_t t = a->t, d = a->d, r = a->hq / a->hkv;
    double *sc = calloc((size_t)t, sizeof(double));
    for (int64_t s = 0; s < a->b; s++)
        for (int64_t h = 0; h < a->hq; h++)
            for (int64_t i = 0; i < t; i++) {
                const float *qi = a->q + ((s * t + i) * a->hq + h) * d;
                double mx = -INFINITY;
                for (int64_t j = 0; j <= i; j++) {
                    const float *kj = a->k + ((s * t + j) * a->hkv + h / r) * d;
                    double dot = 0;
                    for (int64_t c = 0; c < d; c++)
                        dot += (double)qi[c] * kj[c];
                    sc[j] = dot / sqrt((double)d);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                double sum = 0;
                for (int64_t j = 0; j <= i; j++)
                    sum += exp(sc[j] - mx);
                lse[(s * a->hq + h) * t + i] = mx + log(sum);
                double *oi = out + ((s * t + i) * a->hq + h) * d;
                for (int64_t c = 0; c < d; c++)
                    oi[c] = 0;
                for (int64_t j = 0; j <= i; j++) {
                    double pj = exp(sc[j] - mx) / sum * keep_scale(a->dropout, s, h, i, j);
                    const float *vj = a->v + ((s * t + j) * a->hkv + h / r) * d;
                    for (int64_t c = 0; c < d; c++)
                        oi[c] += pj * vj[c];
                }
            }
    free(sc);
}

static void check_forward_shape(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
                                const tsr_dropout *dropout)
{
    attn_case a;
    attn_alloc(&a, b, t, hq, hkv, d, (uint64_t)(t * 100 + d));
    a.dropout = dropout;
    int64_t no = b * t * hq * d, nl = b * hq * t;
    double *ro = calloc((size_t)no, sizeof(double)), *rl = calloc((size_t)nl, sizeof(double));
    naive_attention(ro, rl, &a);
    attn_fwd(&a, a.out);
    double eo = kc_max_rel_diff(a.out, ro, no, 1e-1), el = kc_max_rel_diff(a.lse, rl, nl, 1.0);
    if (eo > 2e-5 || el > 1e-5)
        fprintf(stderr, "attention B%lld T%lld Hq%lld Hkv%lld D%lld: out %.3g lse %.3g\n",
                (long long)b, (long long)t, (long long)hq, (long long)hkv, (long long)d, eo, el);
    CU_ASSERT_TRUE(eo <= 2e-5);
    CU_ASSERT_TRUE(el <= 1e-5);
    free(ro), free(rl);
    attn_free(&a);
}

static void test_forward_matches_naive(void)
{
    check_forward_shape(2, 70, 4, 2, 12, NULL);  /* partial tiles, padded D, GQA */
    check_forward_shape(1, 130, 3, 3, 64, NULL); /* three blocks, MHA */
    check_forward_shape(1, 5, 2, 1, 16, NULL);   /* shorter than a tile, MQA */
    check_forward_shape(1, 64, 2, 2, 80, NULL);  /* exact tile, 64 + 16 columns */
    check_forward_shape(2, 33, 6, 2, 40, NULL);  /* 48 columns */
    check_forward_shape(1, 1, 1, 1, 3, NULL);    /* a single query */
}

static void test_causal_mask(void)
{
    attn_case a;
    attn_alloc(&a, 1, 100, 2, 1, 16, 7);
    float *o1 = kc_alloc(100 * 2 * 16);
    attn_fwd(&a, o1);
    /* change keys and values at positions >= 60: rows < 60 must not move */
    for (int64_t i = 60 * 16; i < 100 * 16; i++)
        a.k[i] += 1.0f, a.v[i] -= 2.0f;
    attn_fwd(&a, a.out);
    CU_ASSERT_EQUAL(memcmp(o1, a.out, sizeof(float) * 60 * 2 * 16), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(o1 + 60 * 32, a.out + 60 * 32, sizeof(float) * 40 * 32), 0);
    free(o1);
    attn_free(&a);
}

/* GQA equals ordinary attention with each key/value head repeated for its
 * query heads; dk, dv are the sums over the repeated heads. */
static void test_gqa_equals_repeated_heads(void)
{
    int64_t b = 2, t = 67, hq = 6, hkv = 2, d = 16, r = hq / hkv;
    attn_case g, m;
    attn_alloc(&g, b, t, hq, hkv, d, 11);
    attn_alloc(&m, b, t, hq, hq, d, 11);
    memcpy(m.q, g.q, sizeof(float) * (size_t)(b * t * hq * d));
    for (int64_t n = 0; n < b * t; n++)
        for (int64_t h = 0; h < hq; h++) {
            memcpy(m.k + (n * hq + h) * d, g.k + (n * hkv + h / r) * d, sizeof(float) * (size_t)d);
            memcpy(m.v + (n * hq + h) * d, g.v + (n * hkv + h / r) * d, sizeof(float) * (size_t)d);
        }
    attn_fwd(&g, g.out);
    attn_fwd(&m, m.out);
    CU_ASSERT_EQUAL(memcmp(g.out, m.out, sizeof(float) * (size_t)(b * t * hq * d)), 0);
    CU_ASSERT_EQUAL(memcmp(g.lse, m.lse, sizeof(float) * (size_t)(b * hq * t)), 0);
    int64_t nq = b * t * hq * d;
    float *dout = kc_alloc(nq), *dqg = kc_alloc(nq), *dkg = kc_alloc(b * t * hkv * d);
    float *dvg = kc_alloc(b * t * hkv * d), *dqm = kc_alloc(nq), *dkm = kc_alloc(nq);
    float *dvm = kc_alloc(nq);
    kc_fill_normal(dout, nq, 12, 0, 1);
    tsr_attention_backward(dqg, dkg, dvg, dout, g.q, g.k, g.v, g.out, g.lse, b, t, hq, hkv, d, NULL,
                           NULL, g.scratch);
    tsr_attention_backward(dqm, dkm, dvm, dout, m.q, m.k, m.v, m.out, m.lse, b, t, hq, hq, d, NULL,
                           NULL, m.scratch);
    CU_ASSERT_EQUAL(memcmp(dqg, dqm, sizeof(float) * (size_t)nq), 0);
    for (int64_t n = 0; n < b * t; n++)
        for (int64_t gg = 0; gg < hkv; gg++)
            for (int64_t c = 0; c < d; c++) {
                double sk = 0, sv = 0;
                for (int64_t h = gg * r; h < (gg + 1) * r; h++)
                    sk += dkm[(n * hq + h) * d + c], sv += dvm[(n * hq + h) * d + c];
                CU_ASSERT_TRUE(fabs(dkg[(n * hkv + gg) * d + c] - sk) <= 1e-5 * (1 + fabs(sk)));
                CU_ASSERT_TRUE(fabs(dvg[(n * hkv + gg) * d + c] - sv) <= 1e-5 * (1 + fabs(sv)));
            }
    free(dout), free(dqg), free(dkg), free(dvg), free(dqm), free(dkm), free(dvm);
    attn_free(&g);
    attn_free(&m);
}

static void check_gradients(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
                            const tsr_dropout *dropout, int64_t samples)
{
    attn_case a;
    attn_alloc(&a, b, t, hq, hkv, d, 21);
    a.dropout = dropout;
    int64_t nq = b * t * hq * d, nk = b * t * hkv * d;
    float *dout = kc_alloc(nq), *dq = kc_alloc(nq), *dk = kc_alloc(nk), *dv = kc_alloc(nk);
    kc_fill_normal(dout, nq, 22, 0, 1);
    attn_fwd(&a, a.out);
    tsr_attention_backward(dq, dk, dv, dout, a.q, a.k, a.v, a.out, a.lse, b, t, hq, hkv, d, NULL,
                           dropout, a.scratch);
    float *out = kc_alloc(nq);
    CU_ASSERT_TRUE(kc_grad_check(&a, attn_fwd, a.q, nq, dq, dout, nq, samples, 1e-2f,
                                 "attention dq") < KC_FD_TOL);
    CU_ASSERT_TRUE(kc_grad_check(&a, attn_fwd, a.k, nk, dk, dout, nq, samples, 1e-2f,
                                 "attention dk") < KC_FD_TOL);
    CU_ASSERT_TRUE(kc_grad_check(&a, attn_fwd, a.v, nk, dv, dout, nq, samples, 1e-2f,
                                 "attention dv") < KC_FD_TOL);
    free(dout), free(dq), free(dk), free(dv), free(out);
    attn_free(&a);
}

static void test_backward_finite_differences(void)
{
    check_gradients(2, 70, 4, 2, 12, NULL, 80);
    check_gradients(1, 9, 2, 1, 16, NULL, 100);
}

static void test_accumulate_null_and_determinism(void)
{
    int64_t b = 2, t = 75, hq = 4, hkv = 2, d = 24;
    attn_case a;
    attn_alloc(&a, b, t, hq, hkv, d, 31);
    int64_t nq = b * t * hq * d, nk = b * t * hkv * d;
    float *dout = kc_alloc(nq), *dq = kc_alloc(nq), *dk = kc_alloc(nk), *dv = kc_alloc(nk);
    float *dq1 = kc_alloc(nq), *dk1 = kc_alloc(nk), *dv1 = kc_alloc(nk);
    kc_fill_normal(dout, nq, 32, 0, 1);
    int saved = omp_get_max_threads();
    float *outs[3], *lses[3], *grads[3];
    for (int th = 1; th <= 3; th++) {
        omp_set_num_threads(th);
        outs[th - 1] = kc_alloc(nq);
        lses[th - 1] = kc_alloc(b * hq * t);
        grads[th - 1] = kc_alloc(nq + 2 * nk);
        tsr_attention_forward(outs[th - 1], lses[th - 1], a.q, a.k, a.v, b, t, hq, hkv, d, NULL, NULL,
                              a.scratch);
        float *gq = grads[th - 1], *gk = gq + nq, *gv = gk + nk;
        tsr_attention_backward(gq, gk, gv, dout, a.q, a.k, a.v, outs[th - 1], lses[th - 1], b, t,
                               hq, hkv, d, NULL, NULL, a.scratch);
    }
    omp_set_num_threads(saved);
    for (int th = 1; th < 3; th++) {
        CU_ASSERT_EQUAL(memcmp(outs[0], outs[th], sizeof(float) * (size_t)nq), 0);
        CU_ASSERT_EQUAL(memcmp(lses[0], lses[th], sizeof(float) * (size_t)(b * hq * t)), 0);
        CU_ASSERT_EQUAL(memcmp(grads[0], grads[th], sizeof(float) * (size_t)(nq + 2 * nk)), 0);
    }
    /* run twice: bitwise equal; accumulate twice: doubled */
    attn_fwd(&a, a.out);
    CU_ASSERT_EQUAL(memcmp(a.out, outs[0], sizeof(float) * (size_t)nq), 0);
    tsr_attention_backward(dq, dk, dv, dout, a.q, a.k, a.v, a.out, a.lse, b, t, hq, hkv, d, NULL, NULL,
                           a.scratch);
    memcpy(dq1, dq, sizeof(float) * (size_t)nq);
    memcpy(dk1, dk, sizeof(float) * (size_t)nk);
    memcpy(dv1, dv, sizeof(float) * (size_t)nk);
    tsr_attention_backward(dq, dk, dv, dout, a.q, a.k, a.v, a.out, a.lse, b, t, hq, hkv, d, NULL, NULL,
                           a.scratch);
    for (int64_t i = 0; i < nq; i++)
        CU_ASSERT_TRUE(fabsf(dq[i] - 2.0f * dq1[i]) <= 1e-6f * (1.0f + fabsf(dq1[i])));
    for (int64_t i = 0; i < nk; i++) {
        CU_ASSERT_TRUE(fabsf(dk[i] - 2.0f * dk1[i]) <= 1e-6f * (1.0f + fabsf(dk1[i])));
        CU_ASSERT_TRUE(fabsf(dv[i] - 2.0f * dv1[i]) <= 1e-6f * (1.0f + fabsf(dv1[i])));
    }
    /* NULL outputs: the others are unchanged */
    float *dk2 = kc_alloc(nk), *dv2 = kc_alloc(nk), *dq2 = kc_alloc(nq);
    tsr_attention_backward(NULL, dk2, NULL, dout, a.q, a.k, a.v, a.out, a.lse, b, t, hq, hkv, d, NULL,
                           NULL, a.scratch);
    tsr_attention_backward(NULL, NULL, dv2, dout, a.q, a.k, a.v, a.out, a.lse, b, t, hq, hkv, d, NULL,
                           NULL, a.scratch);
    tsr_attention_backward(dq2, NULL, NULL, dout, a.q, a.k, a.v, a.out, a.lse, b, t, hq, hkv, d, NULL,
                           NULL, a.scratch);
    CU_ASSERT_EQUAL(memcmp(dk2, dk1, sizeof(float) * (size_t)nk), 0);
    CU_ASSERT_EQUAL(memcmp(dv2, dv1, sizeof(float) * (size_t)nk), 0);
    CU_ASSERT_EQUAL(memcmp(dq2, dq1, sizeof(float) * (size_t)nq), 0);
    for (int th = 0; th < 3; th++)
        free(outs[th]), free(lses[th]), free(grads[th]);
    free(dout), free(dq), free(dk), free(dv), free(dq1), free(dk1), free(dv1);
    free(dk2), free(dv2), free(dq2);
    attn_free(&a);
}

static void test_dropout_forward_and_gradients(void)
{
    tsr_dropout dp = {0};
    dp.p = 0.25f;
    dp.key = tsr_rng_key(5, "attention dropout");
    dp.t_global = 70;
    dp.heads_global = 4;
    check_forward_shape(2, 70, 4, 2, 12, &dp);
    check_gradients(2, 70, 4, 2, 12, &dp, 50);
    /* p = 0 is no dropout, bit for bit */
    tsr_dropout off = dp;
    off.p = 0.0f;
    attn_case a;
    attn_alloc(&a, 1, 40, 2, 1, 8, 41);
    float *o1 = kc_alloc(40 * 2 * 8);
    attn_fwd(&a, o1);
    a.dropout = &off;
    attn_fwd(&a, a.out);
    CU_ASSERT_EQUAL(memcmp(o1, a.out, sizeof(float) * 40 * 2 * 8), 0);
    free(o1);
    attn_free(&a);
}

/* Heads split over two "ranks" (head_offset) and samples split (sample
 * offset) draw the same masks as the whole: outputs are bitwise equal. */
static void test_dropout_layout_independent(void)
{
    int64_t b = 2, t = 50, hq = 4, hkv = 2, d = 8, r = hq / hkv;
    tsr_dropout dp = {0};
    dp.p = 0.3f;
    dp.key = tsr_rng_key(9, "attention dropout");
    dp.t_global = t;
    dp.heads_global = hq;
    attn_case full;
    attn_alloc(&full, b, t, hq, hkv, d, 51);
    full.dropout = &dp;
    attn_fwd(&full, full.out);
    for (int part = 0; part < 2; part++) {
        attn_case p;
        attn_alloc(&p, b, t, hq / 2, hkv / 2, d, 52);
        for (int64_t n = 0; n < b * t; n++) {
            memcpy(p.q + n * (hq / 2) * d, full.q + (n * hq + part * (hq / 2)) * d,
                   sizeof(float) * (size_t)(hq / 2 * d));
            memcpy(p.k + n * d, full.k + (n * hkv + part) * d, sizeof(float) * (size_t)d);
            memcpy(p.v + n * d, full.v + (n * hkv + part) * d, sizeof(float) * (size_t)d);
        }
        tsr_dropout dpp = dp;
        dpp.head_offset = part * r;
        p.dropout = &dpp;
        attn_fwd(&p, p.out);
        for (int64_t n = 0; n < b * t; n++)
            CU_ASSERT_EQUAL(memcmp(p.out + n * (hq / 2) * d, full.out + (n * hq + part * r) * d,
                                   sizeof(float) * (size_t)(r * d)),
                            0);
        attn_free(&p);
    }
    /* sample 1 alone with sample_offset 1 */
    tsr_dropout ds = dp;
    ds.sample_offset = 1;
    float *o = kc_alloc(t * hq * d), *l = kc_alloc(hq * t);
    tsr_attention_forward(o, l, full.q + t * hq * d, full.k + t * hkv * d, full.v + t * hkv * d, 1,
                          t, hq, hkv, d, NULL, &ds, full.scratch);
    CU_ASSERT_EQUAL(memcmp(o, full.out + t * hq * d, sizeof(float) * (size_t)(t * hq * d)), 0);
    free(o), free(l);
    attn_free(&full);
}

static const tsr_test_case attention_cases[] = {
    TSR_TEST(test_forward_matches_naive),
    TSR_TEST(test_causal_mask),
    TSR_TEST(test_gqa_equals_repeated_heads),
    TSR_TEST(test_backward_finite_differences),
    TSR_TEST(test_accumulate_null_and_determinism),
    TSR_TEST(test_dropout_forward_and_gradients),
    TSR_TEST(test_dropout_layout_independent),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("kernels_attention", attention_cases)};
    return tsr_test_main(suites, 1);
}
