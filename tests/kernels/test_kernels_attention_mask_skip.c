/*
 * test_kernels_attention_mask_skip.c - the masked attention's empty tiles
 * are really skipped, and its results do not depend on the thread count
 * (a suite of the test_kernels_attention_mask binary).
 *
 * Skipping is seen through NaN: a tile that is computed "whole and
 * masked" multiplies its masked probabilities (0) by its values, and
 * 0 * NaN is NaN, so NaN put where only skipped tiles read it must leave
 * the results bitwise those of the clean run.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "attention_mask_ref.h"
#include "harness.h"
#include "kernel_check.h"
#include "tessera/kernels.h"

#define T_SKIP 512
#define NBLK (T_SKIP / 64)

/* Query blocks none of whose rows sees a key of key block 0, by the naive
 * rule: bit qb set. */
static unsigned blind_to_block0(const tsr_attn_mask *m)
{
    unsigned bits = 0;
    for (int64_t qb = 0; qb < NBLK; qb++) {
        int any = 0;
        for (int64_t i = qb * 64; i < qb * 64 + 64 && !any; i++)
            for (int64_t j = 0; j < 64 && !any; j++)
                any = ref_sees(m, 0, T_SKIP, i, j);
        bits |= any ? 0u : 1u << qb;
    }
    return bits;
}

/* Rows [i0, i1) of a (T, H, D) tensor (one sample): equal and finite. */
static int rows_equal(const float *a, const float *b, int64_t i0, int64_t i1, int64_t hd)
{
    return all_finite(a + i0 * hd, (i1 - i0) * hd) &&
           memcmp(a + i0 * hd, b + i0 * hd, sizeof(float) * (size_t)((i1 - i0) * hd)) == 0;
}

static void fill_rows(float *x, int64_t i0, int64_t i1, int64_t hd, float value)
{
    for (int64_t n = i0 * hd; n < i1 * hd; n++)
        x[n] = value;
}

/* T = 512, 8 query blocks; `blind` the query blocks that must not see key
 * block 0 (checked against the naive rule first).
 * Forward: NaN in k and v rows 0..63; the out rows and lse of the blind
 * query blocks read no tile of key block 0, so they equal the clean run.
 * Backward: NaN in q and dout rows of the blind query blocks (so their
 * out, lse and Di are NaN too). dK and dV of key block 0 gather only from
 * tiles (qb, 0) with qb not blind, whose inputs are all clean: equal to
 * the clean run. dq rows of the other query blocks read only their own
 * q, dout, out, lse and the (clean) k, v: equal too. What is not checked:
 * the blind rows' own dq, and dK/dV of key blocks the blind rows see. */
static void check_skipped(const tsr_attn_mask *mask, unsigned blind, const char *what)
{
    CU_ASSERT_EQUAL(tsr_attention_mask_check(mask, T_SKIP), TSR_OK);
    unsigned got = blind_to_block0(mask);
    if (got != blind)
        fprintf(stderr, "%s: blind query blocks %#x, expected %#x\n", what, got, blind);
    CU_ASSERT_EQUAL(got, blind);
    int64_t hq = 4, hkv = 2, d = 16, nq = T_SKIP * hq * d, nk = T_SKIP * hkv * d;
    mask_case c;
    mc_init(&c, 1, T_SKIP, hq, hkv, d, 701);
    c.mask = *mask;
    float *dout = kc_alloc(nq);
    kc_fill_normal(dout, nq, 702, 0, 1);
    float *o1 = kc_alloc(nq), *l1 = kc_alloc(hq * T_SKIP), *g1 = kc_alloc(nq + 2 * nk);
    float *g2 = kc_alloc(nq + 2 * nk), *k0 = kc_alloc(nk), *v0 = kc_alloc(nk);
    mc_forward(&c, c.out);
    memcpy(o1, c.out, sizeof(float) * (size_t)nq);
    memcpy(l1, c.lse, sizeof(float) * (size_t)(hq * T_SKIP));
    mc_backward(&c, g1, g1 + nq, g1 + nq + nk, dout);

    /* forward: key block 0 poisoned */
    memcpy(k0, c.k, sizeof(float) * (size_t)nk);
    memcpy(v0, c.v, sizeof(float) * (size_t)nk);
    fill_rows(c.k, 0, 64, hkv * d, NAN);
    fill_rows(c.v, 0, 64, hkv * d, NAN);
    mc_forward(&c, c.out);
    int fwd_ok = 1;
    for (int64_t qb = 0; qb < NBLK; qb++) {
        if (!(blind >> qb & 1u))
            continue;
        fwd_ok &= rows_equal(c.out, o1, qb * 64, qb * 64 + 64, hq * d);
        for (int64_t h = 0; h < hq; h++)
            fwd_ok &= rows_equal(c.lse + h * T_SKIP, l1 + h * T_SKIP, qb * 64, qb * 64 + 64, 1);
    }
    if (!fwd_ok)
        fprintf(stderr, "%s: NaN keys of block 0 reached a query block that cannot see them\n",
                what);
    CU_ASSERT_TRUE(fwd_ok);
    memcpy(c.k, k0, sizeof(float) * (size_t)nk);
    memcpy(c.v, v0, sizeof(float) * (size_t)nk);

    /* backward: the blind query blocks poisoned */
    for (int64_t qb = 0; qb < NBLK; qb++)
        if (blind >> qb & 1u) {
            fill_rows(c.q, qb * 64, qb * 64 + 64, hq * d, NAN);
            fill_rows(dout, qb * 64, qb * 64 + 64, hq * d, NAN);
        }
    mc_forward(&c, c.out);
    mc_backward(&c, g2, g2 + nq, g2 + nq + nk, dout);
    int bwd_ok = rows_equal(g2 + nq, g1 + nq, 0, 64, hkv * d) &&
                 rows_equal(g2 + nq + nk, g1 + nq + nk, 0, 64, hkv * d);
    for (int64_t qb = 0; qb < NBLK; qb++)
        if (!(blind >> qb & 1u))
            bwd_ok &= rows_equal(g2, g1, qb * 64, qb * 64 + 64, hq * d);
    if (!bwd_ok)
        fprintf(stderr, "%s: NaN queries reached dK/dV of key block 0 or another block's dq\n",
                what);
    CU_ASSERT_TRUE(bwd_ok);
    free(dout), free(o1), free(l1), free(g1), free(g2), free(k0), free(v0);
    mc_free(&c);
}

static void test_empty_tiles_skipped(void)
{
    tsr_attn_mask m;
    memset(&m, 0, sizeof m);
    /* window 64: query block I sees key blocks I-1 and I only */
    m.pattern = TSR_ATTN_WINDOW;
    m.window = 64;
    check_skipped(&m, 0xfcu, "window 64");
    /* strided, L = 2: key block 0 is seen by query blocks 0, 1 (recent)
     * and 2, 4, 6 (every second block); not by 3, 5, 7 */
    m.pattern = TSR_ATTN_STRIDED;
    m.block = 64, m.stride = 128;
    check_skipped(&m, 0xa8u, "strided 64/128");
    /* strided, L = 3: seen by 0, 1, 2 and 3, 6; not by 4, 5, 7 */
    m.stride = 192;
    check_skipped(&m, 0xb0u, "strided 64/192");
    /* fixed, L = 2: key block 0 is no window's last block: seen by its
     * own window (query blocks 0, 1) only */
    m.pattern = TSR_ATTN_FIXED;
    m.stride = 128;
    check_skipped(&m, 0xfcu, "fixed 64/128");
}

/* out, lse, dq, dk, dv bitwise equal with 1, 2 and 3 threads */
static void check_thread_counts(mask_case *c, const char *what)
{
    int64_t nq = c->b * c->t * c->hq * c->d, nk = c->b * c->t * c->hkv * c->d;
    int64_t nl = c->b * c->hq * c->t, n = 2 * nq + nl + 2 * nk;
    float *dout = kc_alloc(nq), *res[3];
    kc_fill_normal(dout, nq, 801, 0, 1);
    int saved = omp_get_max_threads();
    for (int th = 1; th <= 3; th++) {
        omp_set_num_threads(th);
        float *r = res[th - 1] = kc_alloc(n);
        mc_forward(c, c->out);
        memcpy(r, c->out, sizeof(float) * (size_t)nq);
        memcpy(r + nq, c->lse, sizeof(float) * (size_t)nl);
        mc_backward(c, r + nq + nl, r + 2 * nq + nl, r + 2 * nq + nl + nk, dout);
    }
    omp_set_num_threads(saved);
    for (int th = 1; th < 3; th++) {
        int same = memcmp(res[0], res[th], sizeof(float) * (size_t)n) == 0;
        if (!same)
            fprintf(stderr, "%s: %d threads differ from 1\n", what, th + 1);
        CU_ASSERT_TRUE(same);
    }
    for (int th = 0; th < 3; th++)
        free(res[th]);
    free(dout);
}

static void test_thread_count_determinism(void)
{
    mask_case c;
    mc_init(&c, 2, 288, 4, 2, 24, 811); /* 288 = 4 * 64 + 32 */
    c.mask.pattern = TSR_ATTN_STRIDED;
    c.mask.block = 32, c.mask.stride = 96;
    check_thread_counts(&c, "strided 32/96");
    mc_free(&c);

    static const int docs0[] = {0, 50, 120}, docs1[] = {0, 100};
    mc_init(&c, 2, 200, 4, 2, 16, 812);
    mc_arrays(&c);
    mc_documents(&c, 0, docs0, 3);
    mc_documents(&c, 1, docs1, 2);
    mc_prefix(&c, 0, 16, 1);
    mc_prefix(&c, 1, 40, 0);
    mc_padding(&c, 1, 170);
    c.mask.pattern = TSR_ATTN_WINDOW;
    c.mask.window = 48;
    check_thread_counts(&c, "documents + prefix + window 48");
    mc_free(&c);
}

const tsr_test_case attention_skip_cases[] = {
    TSR_TEST(test_empty_tiles_skipped),
    TSR_TEST(test_thread_count_determinism),
};
const size_t attention_skip_count = sizeof attention_skip_cases / sizeof attention_skip_cases[0];
