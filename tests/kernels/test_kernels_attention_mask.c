/*
 * test_kernels_attention_mask.c - the attention masks (tsr_attn_mask in
 * kernels.h) against a naive reference written from their definition
 * (attention_mask_ref.c): forward values and lse for every pattern
 * (causal, sliding window, fixed and strided block-sparse on both the
 * per-range and the per-element tile paths), documents, bidirectional
 * prefixes (touching the causal part and not: the "gap" case) and padding
 * rows that see nothing; finite-difference gradients of q, k, v under the
 * masks; tsr_attention_computed_elements against hand counts and a brute
 * force over 64x64 tiles; and the refusals of tsr_attention_mask_check.
 * test_kernels_attention_mask_skip.c (same binary) checks that empty tiles
 * are never touched and that results do not depend on the thread count.
 *
 * Tolerances: forward against the double reference, as the largest
 * |kernel - ref| / (|ref| + 1e-3): out 5e-4, lse 1e-4 (observed: 1.4e-4
 * and 2.2e-5; the out figure is fp32 rounding of outputs near zero, whose
 * absolute error stays below 7e-7; see attention_mask_ref.h). Rows that
 * see no key: exactly out == 0 and lse == -inf. Gradients: KC_FD_TOL
 * (relative L2 of the analytic gradient against central differences,
 * eps 1e-2; observed below 1e-4).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attention_mask_ref.h"
#include "harness.h"
#include "kernel_check.h"
#include "tessera/kernels.h"
#include "tessera/status.h"

static void expect_forward(mask_case *c, const char *what)
{
    CU_ASSERT_TRUE(mc_check_forward(c, what));
}

static void set_sparse(mask_case *c, tsr_attn_pattern p, int64_t block, int64_t stride)
{
    c->mask.pattern = p;
    c->mask.block = block;
    c->mask.stride = stride;
    CU_ASSERT_EQUAL(tsr_attention_mask_check(&c->mask, c->t), TSR_OK);
}

static void set_window(mask_case *c, int64_t window)
{
    c->mask.pattern = TSR_ATTN_WINDOW;
    c->mask.window = window;
    CU_ASSERT_EQUAL(tsr_attention_mask_check(&c->mask, c->t), TSR_OK);
}

/* CAUSAL and WINDOW over partial tiles (T = 200 = 3 * 64 + 8) with GQA */
static void test_forward_causal_window(void)
{
    mask_case c;
    mc_init(&c, 2, 200, 4, 2, 24, 101);
    expect_forward(&c, "causal");
    const int64_t windows[] = {1, 17, 64, 100, 200};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        char what[64];
        snprintf(what, sizeof what, "window %lld", (long long)windows[w]);
        set_window(&c, windows[w]);
        expect_forward(&c, what);
    }
    mc_free(&c);
}

/* FIXED and STRIDED: blocks that are multiples of 64 (one answer per
 * tile: the per-range path) and blocks smaller than a tile (the
 * per-element path, T = 224 ending in a partial tile) */
static void test_forward_sparse(void)
{
    static const struct {
        int64_t t, block, stride, hq, hkv, d;
    } shapes[] = {
        {320, 64, 128, 4, 2, 16}, {320, 64, 192, 4, 2, 16}, {512, 128, 256, 2, 1, 16},
        {240, 16, 48, 2, 2, 40},  {224, 32, 64, 4, 2, 40},  {224, 32, 96, 2, 1, 24},
    };
    for (size_t n = 0; n < sizeof shapes / sizeof shapes[0]; n++)
        for (int p = 0; p < 2; p++) {
            tsr_attn_pattern pattern = p == 0 ? TSR_ATTN_FIXED : TSR_ATTN_STRIDED;
            mask_case c;
            mc_init(&c, 1, shapes[n].t, shapes[n].hq, shapes[n].hkv, shapes[n].d, 200 + n);
            set_sparse(&c, pattern, shapes[n].block, shapes[n].stride);
            char what[96];
            snprintf(what, sizeof what, "%s block %lld stride %lld",
                     p == 0 ? "fixed" : "strided", (long long)shapes[n].block,
                     (long long)shapes[n].stride);
            expect_forward(&c, what);
            mc_free(&c);
        }
}

/* Documents (different per sample) alone and with bidirectional prefixes,
 * under CAUSAL, WINDOW and FIXED (range and element paths). */
static void test_forward_documents_prefix(void)
{
    /* sample 1's first document reaches query block 2, whose tile with
     * key block 0 fixed 64/128 turns off: only the prefix is seen there */
    static const int docs0[] = {0, 37, 100, 150}, docs1[] = {0, 150, 151, 200};
    mask_case c;
    mc_init(&c, 2, 256, 4, 2, 16, 301);
    mc_arrays(&c);
    mc_documents(&c, 0, docs0, 4);
    mc_documents(&c, 1, docs1, 4);
    expect_forward(&c, "documents");
    /* the prefix rows see their whole prefix */
    mc_prefix(&c, 0, 12, 0);
    mc_prefix(&c, 1, 30, 0);
    expect_forward(&c, "documents + prefix");
    set_window(&c, 20);
    expect_forward(&c, "documents + prefix + window 20");
    /* every row sees its document's prefix: far from the window, the two
     * parts no longer touch */
    mc_prefix(&c, 0, 12, 1);
    mc_prefix(&c, 1, 30, 1);
    expect_forward(&c, "documents + prefix (all rows) + window 20");
    set_sparse(&c, TSR_ATTN_FIXED, 64, 128);
    expect_forward(&c, "documents + prefix + fixed 64/128");
    set_sparse(&c, TSR_ATTN_STRIDED, 64, 128);
    expect_forward(&c, "documents + prefix + strided 64/128");
    set_sparse(&c, TSR_ATTN_FIXED, 16, 32);
    expect_forward(&c, "documents + prefix + fixed 16/32");
    mc_free(&c);
}

/* Prefixes that do not touch the causal part: keys ahead of the query,
 * keys behind the query's document, and prefix-only rows (no causal
 * part). */
static void test_forward_prefix_gap(void)
{
    mask_case c;
    int64_t t = 192;
    mc_init(&c, 1, t, 2, 1, 16, 401);
    mc_arrays(&c);
    for (int64_t i = 0; i < t; i++) {
        if (i % 3 == 0 && i + 41 < t) { /* ahead of the query */
            c.plo[i] = (int32_t)(i + 40);
            c.phi[i] = (int32_t)(i + 60 < t ? i + 60 : t);
        } else if (i % 3 == 1) { /* no causal part, a prefix ahead */
            c.doc[i] = (int32_t)(i + 1);
            if (i + 9 <= t)
                c.plo[i] = (int32_t)(i + 5), c.phi[i] = (int32_t)(i + 9);
        } else if (i >= 100) { /* behind the document */
            c.doc[i] = 100;
            c.plo[i] = 0, c.phi[i] = 5;
        }
    }
    expect_forward(&c, "prefix gap");
    set_window(&c, 30);
    expect_forward(&c, "prefix gap + window 30");
    mc_free(&c);
    /* T = 200: a last document whose prefix [180, 200) reaches into the
     * partial tile (keys 192..199) from query block 2 */
    static const int docs[] = {0, 70, 180};
    mc_init(&c, 1, 200, 4, 2, 16, 402);
    mc_arrays(&c);
    mc_documents(&c, 0, docs, 3);
    mc_prefix(&c, 0, 30, 0);
    expect_forward(&c, "prefix into a partial tile");
    mc_free(&c);
}

/* Padding rows (doc_start[i] = i + 1, no prefix): out exactly 0, lse -inf,
 * and no NaN in the gradients; their dq is 0, as are dk and dv of keys
 * no query sees. */
static void test_padding_rows(void)
{
    static const int docs0[] = {0, 90};
    const struct {
        tsr_attn_pattern p;
        int64_t window, block, stride;
    } patterns[] = {{TSR_ATTN_CAUSAL, 0, 0, 0},
                    {TSR_ATTN_WINDOW, 50, 0, 0},
                    {TSR_ATTN_STRIDED, 0, 20, 40},
                    {TSR_ATTN_FIXED, 0, 40, 80}};
    for (size_t n = 0; n < sizeof patterns / sizeof patterns[0]; n++) {
        mask_case c;
        int64_t t = 200, d = 16;
        mc_init(&c, 2, t, 4, 2, d, 501 + n);
        mc_arrays(&c);
        c.mask.pattern = patterns[n].p;
        c.mask.window = patterns[n].window;
        c.mask.block = patterns[n].block;
        c.mask.stride = patterns[n].stride;
        CU_ASSERT_EQUAL(tsr_attention_mask_check(&c.mask, t), TSR_OK);
        mc_documents(&c, 0, docs0, 2);
        mc_prefix(&c, 0, 10, 1);
        mc_padding(&c, 0, 170);
        mc_padding(&c, 1, 60); /* query blocks 1..3 of sample 1 are all padding */
        expect_forward(&c, "padding rows");
        int64_t nq = 2 * t * 4 * d, nk = 2 * t * 2 * d;
        float *dout = kc_alloc(nq), *dq = kc_alloc(nq), *dk = kc_alloc(nk), *dv = kc_alloc(nk);
        kc_fill_normal(dout, nq, 502, 0, 1);
        mc_forward(&c, c.out);
        mc_backward(&c, dq, dk, dv, dout);
        CU_ASSERT_TRUE(all_finite(c.out, nq));
        CU_ASSERT_TRUE(all_finite(dq, nq) && all_finite(dk, nk) && all_finite(dv, nk));
        int zero = 1;
        for (int64_t s = 0; s < 2; s++)
            for (int64_t i = s == 0 ? 170 : 60; i < t; i++) {
                for (int64_t e = 0; e < 4 * d; e++)
                    zero &= dq[(s * t + i) * 4 * d + e] == 0.0f;
                if (s == 1) /* keys >= 60 of sample 1: seen by no query */
                    for (int64_t e = 0; e < 2 * d; e++)
                        zero &= dk[(t + i) * 2 * d + e] == 0.0f && dv[(t + i) * 2 * d + e] == 0.0f;
            }
        CU_ASSERT_TRUE(zero);
        free(dout), free(dq), free(dk), free(dv);
        mc_free(&c);
    }
}

static void check_gradients(mask_case *c, const char *what, int64_t samples)
{
    int64_t nq = c->b * c->t * c->hq * c->d, nk = c->b * c->t * c->hkv * c->d;
    float *dout = kc_alloc(nq), *dq = kc_alloc(nq), *dk = kc_alloc(nk), *dv = kc_alloc(nk);
    kc_fill_normal(dout, nq, 601, 0, 1);
    mc_forward(c, c->out);
    mc_backward(c, dq, dk, dv, dout);
    CU_ASSERT_TRUE(all_finite(dq, nq) && all_finite(dk, nk) && all_finite(dv, nk));
    char name[128];
    snprintf(name, sizeof name, "%s dq", what);
    CU_ASSERT_TRUE(kc_grad_check(c, mc_forward, c->q, nq, dq, dout, nq, samples, 1e-2f, name) <
                   KC_FD_TOL);
    snprintf(name, sizeof name, "%s dk", what);
    CU_ASSERT_TRUE(kc_grad_check(c, mc_forward, c->k, nk, dk, dout, nq, samples, 1e-2f, name) <
                   KC_FD_TOL);
    snprintf(name, sizeof name, "%s dv", what);
    CU_ASSERT_TRUE(kc_grad_check(c, mc_forward, c->v, nk, dv, dout, nq, samples, 1e-2f, name) <
                   KC_FD_TOL);
    free(dout), free(dq), free(dk), free(dv);
}

static void test_gradients(void)
{
    mask_case c;
    mc_init(&c, 1, 130, 4, 2, 16, 611);
    set_window(&c, 17);
    check_gradients(&c, "window 17", 40);
    mc_free(&c);

    mc_init(&c, 1, 256, 2, 1, 16, 612); /* per-range: tiles (2, 0), (3, 0) empty */
    set_sparse(&c, TSR_ATTN_FIXED, 64, 128);
    check_gradients(&c, "fixed 64/128", 40);
    mc_free(&c);

    mc_init(&c, 1, 96, 2, 1, 16, 613); /* per-element, a partial tile */
    set_sparse(&c, TSR_ATTN_FIXED, 16, 32);
    check_gradients(&c, "fixed 16/32", 40);
    mc_free(&c);

    /* sample 0's second prefix, [40, 80), crosses into key block 1: a
     * tile above the diagonal */
    static const int docs0[] = {0, 40, 100}, docs1[] = {0, 64};
    mc_init(&c, 2, 130, 2, 1, 16, 614);
    mc_arrays(&c);
    mc_documents(&c, 0, docs0, 3);
    mc_documents(&c, 1, docs1, 2);
    mc_prefix(&c, 0, 40, 0);
    mc_prefix(&c, 1, 20, 1);
    check_gradients(&c, "documents + prefix", 40);
    set_window(&c, 16); /* sample 1's later rows: prefix and window apart */
    check_gradients(&c, "documents + prefix + window 16", 40);
    mc_free(&c);

    static const int docs2[] = {0, 50};
    mc_init(&c, 1, 100, 2, 1, 16, 615);
    mc_arrays(&c);
    mc_documents(&c, 0, docs2, 2);
    mc_prefix(&c, 0, 5, 1);
    mc_padding(&c, 0, 80);
    c.doc[30] = 31; /* an empty row inside a document */
    c.plo[30] = c.phi[30] = 0;
    for (int i = 10; i < 20; i++) /* prefixes ahead, apart from the causal part */
        c.plo[i] = 70, c.phi[i] = 90;
    check_gradients(&c, "empty rows + prefix gap", 40);
    mc_free(&c);
}

/* Elements of the 64x64 tiles in which some score is visible, by brute
 * force over the naive rule (a tile counts at its real size). */
static double brute_elements(const tsr_attn_mask *m, int64_t t)
{
    double total = 0;
    for (int64_t q0 = 0; q0 < t; q0 += 64)
        for (int64_t k0 = 0; k0 < t; k0 += 64) {
            int64_t q1 = q0 + 64 < t ? q0 + 64 : t, k1 = k0 + 64 < t ? k0 + 64 : t, any = 0;
            for (int64_t i = q0; i < q1 && !any; i++)
                for (int64_t j = k0; j < k1 && !any; j++)
                    any = ref_sees(m, 0, t, i, j);
            total += any ? (double)((q1 - q0) * (k1 - k0)) : 0.0;
        }
    return total;
}

static void test_computed_elements(void)
{
    tsr_attn_mask m;
    memset(&m, 0, sizeof m);
    /* causal, T = 4096: the 64 * 65 / 2 tiles on and below the diagonal */
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(&m, 4096), 64.0 * 64.0 * (64.0 * 65.0 / 2.0));
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(NULL, 4096), 64.0 * 64.0 * (64.0 * 65.0 / 2.0));
    /* a partial last tile: 64 x 64, then 36 rows x 100 keys */
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(NULL, 100), 64.0 * 64.0 + 36.0 * 100.0);
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(NULL, 1), 1.0);
    /* window 256, T = 4096: query block I (rows 64I .. 64I+63) sees keys
     * 64I-255 .. 64I+63, so key blocks I-4 .. I (block I-4 holds key
     * 64I-255 for row 64I); blocks 0..3 have 1, 2, 3, 4 tiles, the other
     * 60 have 5: 10 + 300 = 310 tiles of 64 * 64 */
    m.pattern = TSR_ATTN_WINDOW;
    m.window = 256;
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(&m, 4096), 310.0 * 64.0 * 64.0);
    /* T = 200 = 3 * 64 + 8, causal: 6 full tiles, then the last block's
     * 8 rows against 64 + 64 + 64 + 8 keys */
    double partial = 6.0 * 64 * 64 + 8.0 * (3 * 64 + 8);
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(NULL, 200), partial);
    memset(&m, 0, sizeof m);
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(&m, 200), partial);
    CU_ASSERT_EQUAL(brute_elements(&m, 200), partial);
    /* the per-query arrays do not count */
    int32_t doc[200] = {0};
    for (int i = 0; i < 200; i++)
        doc[i] = (int32_t)(i + 1);
    m.doc_start = doc;
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(&m, 200), partial);
    m.doc_start = NULL;
    /* windows over partial tiles, by brute force */
    const int64_t windows[] = {1, 63, 64, 65, 100, 1000};
    m.pattern = TSR_ATTN_WINDOW;
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        m.window = windows[w];
        CU_ASSERT_EQUAL(tsr_attention_computed_elements(&m, 1000), brute_elements(&m, 1000));
    }
    /* the sparse patterns, by brute force */
    static const int64_t sparse[][3] = {{1024, 64, 128},  {1024, 64, 192}, {1024, 128, 256},
                                        {1024, 128, 384}, {1024, 16, 48},  {1024, 32, 64},
                                        {960, 32, 96},    {960, 64, 320},  {1000, 8, 40}};
    for (size_t n = 0; n < sizeof sparse / sizeof sparse[0]; n++)
        for (int p = 0; p < 2; p++) {
            m.pattern = p == 0 ? TSR_ATTN_FIXED : TSR_ATTN_STRIDED;
            m.block = sparse[n][1];
            m.stride = sparse[n][2];
            double got = tsr_attention_computed_elements(&m, sparse[n][0]);
            double want = brute_elements(&m, sparse[n][0]);
            if (got != want)
                fprintf(stderr, "%s block %lld stride %lld T %lld: %.0f elements, want %.0f\n",
                        p == 0 ? "fixed" : "strided", (long long)m.block, (long long)m.stride,
                        (long long)sparse[n][0], got, want);
            CU_ASSERT_EQUAL(got, want);
            /* never more than causal; blocks of 64 and more skip tiles
             * (smaller ones often put a visible block in every tile) */
            double causal = tsr_attention_computed_elements(NULL, sparse[n][0]);
            CU_ASSERT_TRUE(m.block % 64 == 0 ? got < causal : got <= causal);
        }
    /* fixed 64/128 at T = 1024 by hand: 16 blocks, L = 2; query block I
     * sees its own window (1 tile for I even, 2 for I odd: 24 in all) and
     * the odd blocks below its window (I / 2 of them: 2 * (0 + .. + 7) =
     * 56): 80 tiles */
    m.pattern = TSR_ATTN_FIXED;
    m.block = 64, m.stride = 128;
    CU_ASSERT_EQUAL(tsr_attention_computed_elements(&m, 1024), 80.0 * 64 * 64);
}

static void expect_refused(const tsr_attn_mask *m, int64_t t, const char *flag)
{
    tsr_error_clear();
    CU_ASSERT_EQUAL(tsr_attention_mask_check(m, t), TSR_ERR_INVALID_ARG);
    if (strstr(tsr_last_error(), flag) == NULL)
        fprintf(stderr, "mask check: \"%s\" does not name %s\n", tsr_last_error(), flag);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), flag));
}

static void test_mask_check(void)
{
    tsr_attn_mask m;
    memset(&m, 0, sizeof m);
    CU_ASSERT_EQUAL(tsr_attention_mask_check(NULL, 100), TSR_OK);
    CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 100), TSR_OK);
    m.pattern = TSR_ATTN_WINDOW;
    m.window = 0;
    expect_refused(&m, 256, "--window-size");
    m.window = 257;
    expect_refused(&m, 256, "--window-size");
    m.window = 1;
    CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 256), TSR_OK);
    m.window = 256;
    CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 256), TSR_OK);
    for (int p = 0; p < 2; p++) {
        m.pattern = p == 0 ? TSR_ATTN_FIXED : TSR_ATTN_STRIDED;
        m.block = 48, m.stride = 96; /* 48 does not divide 256 */
        expect_refused(&m, 256, "--sparse-block");
        m.block = 0;
        expect_refused(&m, 256, "--sparse-block");
        m.block = 64, m.stride = 96; /* not a multiple */
        expect_refused(&m, 256, "--sparse-stride");
        m.stride = 32; /* below the block */
        expect_refused(&m, 256, "--sparse-stride");
        m.stride = 0;
        expect_refused(&m, 256, "--sparse-stride");
        m.block = 64, m.stride = 128;
        CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 256), TSR_OK);
        m.stride = 64; /* L = 1 */
        CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 256), TSR_OK);
        m.block = 16, m.stride = 48;
        CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 240), TSR_OK);
        m.block = 8, m.stride = 40;
        CU_ASSERT_EQUAL(tsr_attention_mask_check(&m, 200), TSR_OK);
    }
}

static const tsr_test_case mask_cases[] = {
    TSR_TEST(test_forward_causal_window),
    TSR_TEST(test_forward_sparse),
    TSR_TEST(test_forward_documents_prefix),
    TSR_TEST(test_forward_prefix_gap),
    TSR_TEST(test_padding_rows),
    TSR_TEST(test_gradients),
    TSR_TEST(test_computed_elements),
    TSR_TEST(test_mask_check),
};

int main(void)
{
    const tsr_test_suite suites[] = {
        TSR_SUITE("kernels_attention_mask", mask_cases),
        {"kernels_attention_mask_skip", attention_skip_cases, attention_skip_count},
    };
    return tsr_test_main(suites, 2);
}
