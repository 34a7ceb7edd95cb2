/*
 * test_kernels_cuda_train.c - the kernels of runtime/kernels/cuda/
 * cuda_kernels.h around the loss and the optimizer step (token embedding,
 * the cross-entropy steps, add/accumulate/scale, the sum of squares,
 * AdamW) against their fp32 CPU kernels (include/tessera/kernels.h) on
 * random inputs of awkward sizes, on a stream of its own. Exits 77
 * (skipped) where no CUDA device is visible. Run by ctest -L gpu.
 *
 * Tolerances, per kernel where it is checked: fp32 results that round
 * differently on the two sides (expf/logf of a few ulp, summation orders,
 * FMA contraction in the CPU's AdamW) are compared as
 *     max_i |gpu_i - cpu_i| / max(|cpu_i|, floor) <= rtol
 * with rtol 1e-5 and a floor that says where an absolute error is the
 * right measure (a difference of O(1) terms). Kernels that do the same
 * single rounding per element on both sides (the embedding's copy and
 * ordered scatter-add, add/accumulate/scale, the max, the target logit)
 * are compared bit for bit, and so is AdamW against a restatement of the
 * CPU's statements rounded one operation at a time; the sum of squares (in
 * double) to 1e-11 relative, and bitwise run to run. Gradients start from
 * non-zero values, so that backward's += is what is checked.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "harness.h"
#include "kernel_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch_geometry.h"
#include "tessera/kernels.h"

static float *copy_of(const float *x, int64_t n)
{
    float *y = kc_alloc(n);
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

/* tokens in [lo, lo + span), and one -1 (an ignored position) among several */
static void fill_tokens(int32_t *tokens, int64_t n, uint64_t seed, int32_t lo, int32_t span)
{
    float *u = kc_alloc(n);
    kc_fill_uniform(u, n, seed, 0.0f, 1.0f);
    for (int64_t i = 0; i < n; i++)
        tokens[i] = lo + (int32_t)(u[i] * (float)span) % span;
    if (n > 1)
        tokens[n / 2] = -1;
    free(u);
}

static void embedding_case(int64_t n, int64_t c, int64_t vocab_start, int64_t vocab_local,
                           int32_t lo, int32_t span)
{
    cudaStream_t stream = cc_stream();
    int32_t *tokens = malloc((size_t)n * sizeof(int32_t));
    CU_ASSERT_PTR_NOT_NULL_FATAL(tokens);
    fill_tokens(tokens, n, (uint64_t)(n + c), lo, span);
    int64_t nc = n * c, vc = vocab_local * c;
    float *table = kc_alloc(vc), *out = kc_alloc(nc), *g_out = kc_alloc(nc);
    float *dy = kc_alloc(nc), *dt = kc_alloc(vc), *g_dt = kc_alloc(vc), *g_dt2 = kc_alloc(vc);
    kc_fill_normal(table, vc, 51, 0.0f, 1.0f);
    kc_fill_normal(dy, nc, 52, 0.0f, 1.0f);
    kc_fill_normal(dt, vc, 53, 0.0f, 1.0f);
    int32_t *d_tok = cc_dev_from(tokens, (size_t)n * sizeof(int32_t));
    float *d_table = cc_dev_floats(table, vc), *d_out = cc_dev_floats(dy, nc);
    float *d_dy = cc_dev_floats(dy, nc);
    float *d_dt = cc_dev_floats(dt, vc), *d_dt2 = cc_dev_floats(dt, vc);
    tsr_embedding_forward(out, tokens, table, n, c, vocab_start, vocab_local);
    CU_ASSERT_EQUAL(tsr_cuda_embedding_forward(d_out, d_tok, d_table, n, c, vocab_start,
                                               vocab_local, stream),
                    TSR_OK);
    cc_floats_to_host(g_out, d_out, nc);
    cc_expect_bits("embedding out", n, c, g_out, out, (size_t)nc * 4);
    CU_ASSERT_EQUAL(tsr_cuda_embedding_backward(d_dt, d_dy, d_tok, n, c, vocab_start, vocab_local,
                                                stream),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_cuda_embedding_backward(d_dt2, d_dy, d_tok, n, c, vocab_start,
                                                vocab_local, stream),
                    TSR_OK);
    tsr_embedding_backward(dt, dy, tokens, n, c, vocab_start, vocab_local);
    cc_floats_to_host(g_dt, d_dt, vc);
    cc_floats_to_host(g_dt2, d_dt2, vc);
    /* every element adds its tokens' rows in token order, one fp32 add each,
     * on both sides: bitwise, and so bitwise run to run */
    cc_expect_bits("embedding dtable", n, c, g_dt, dt, (size_t)vc * 4);
    cc_expect_bits("embedding dtable run to run", n, c, g_dt2, g_dt, (size_t)vc * 4);
    void *dev[] = {d_tok, d_table, d_out, d_dy, d_dt, d_dt2};
    void *host[] = {tokens, table, out, g_out, dy, dt, g_dt, g_dt2};
    cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
}

static void test_embedding(void)
{
    /* tokens in [80, 170) against the slice [100, 150): some below, some above */
    for (int b = 0; b < 3; b++) /* c = 1, 33, 769 */
        embedding_case(1000, cc_col_counts[b], 100, 50, 80, 90);
    embedding_case(1, 33, 100, 50, 100, 1);
    /* 4096 tokens over 7 rows (~585 each), 1000 columns: many collisions */
    embedding_case(4096, 1000, 0, 7, 0, 7);
    /* a wide slice, 64 slots of many rows each */
    embedding_case(2000, 33, 1000, 30000, 900, 31000);
}

static void test_cross_entropy(void)
{
    cudaStream_t stream = cc_stream();
    for (int a = 0; a < 3; a++) { /* rows 1, 7, 129 */
        for (int b = 0; b < CC_COUNT(cc_col_counts); b++) {
            int64_t n = cc_row_counts[a], v = cc_col_counts[b], nv = n * v, start = 1000;
            float *logits = kc_alloc(nv), *dloss = kc_alloc(n);
            int32_t *targets = malloc((size_t)n * sizeof(int32_t));
            CU_ASSERT_PTR_NOT_NULL_FATAL(targets);
            kc_fill_normal(logits, nv, 61, 0.0f, 3.0f);
            kc_fill_normal(dloss, n, 62, 0.0f, 1.0f);
            for (int64_t i = 0; i < n; i++) {
                /* in the slice, below it, above it, ignored (-1) */
                int32_t kinds[4] = {(int32_t)(start + (i * 7919) % v), 5, (int32_t)(start + v + 3),
                                    -1};
                targets[i] = i % 5 == 4 ? kinds[1 + (i / 5) % 3] : kinds[0];
                if (i % 6 == 5)
                    dloss[i] = 0.0f; /* a masked token */
            }
            float *mx = kc_alloc(n), *se = kc_alloc(n), *tl = kc_alloc(n), *loss = kc_alloc(n);
            float *g = kc_alloc(nv), *grad = copy_of(logits, nv);
            int32_t *d_tg = cc_dev_from(targets, (size_t)n * sizeof(int32_t));
            float *d_lg = cc_dev_floats(logits, nv), *d_dl = cc_dev_floats(dloss, n);
            float *d_mx = cc_dev_floats(dloss, n), *d_se = cc_dev_floats(dloss, n);
            float *d_tl = cc_dev_floats(dloss, n), *d_loss = cc_dev_floats(dloss, n);
            tsr_ce_row_max(mx, logits, n, v);
            CU_ASSERT_EQUAL(tsr_cuda_ce_row_max(d_mx, d_lg, n, v, stream), TSR_OK);
            cc_floats_to_host(g, d_mx, n);
            cc_expect_bits("ce row_max", n, v, g, mx, (size_t)n * 4); /* a max is exact */
            /* each later step from the CPU's previous outputs, to test it alone */
            tsr_ce_sumexp_target(se, tl, logits, mx, targets, n, v, start);
            CU_ASSERT_EQUAL(cudaMemcpy(d_mx, mx, (size_t)n * 4, cudaMemcpyHostToDevice),
                            cudaSuccess);
            CU_ASSERT_EQUAL(tsr_cuda_ce_sumexp_target(d_se, d_tl, d_lg, d_mx, d_tg, n, v, start,
                                                      stream),
                            TSR_OK);
            cc_floats_to_host(g, d_se, n);
            /* a sum of positive terms, each expf within a few ulp: relative */
            cc_expect_close("ce sumexp", n, v, g, se, n, 1e-5, 0.0);
            cc_floats_to_host(g, d_tl, n);
            cc_expect_bits("ce target_logit", n, v, g, tl, (size_t)n * 4);
            tsr_ce_loss(loss, se, mx, tl, n);
            float *d_cse = cc_dev_floats(se, n), *d_ctl = cc_dev_floats(tl, n);
            CU_ASSERT_EQUAL(tsr_cuda_ce_loss(d_loss, d_cse, d_mx, d_ctl, n, stream), TSR_OK);
            cc_floats_to_host(g, d_loss, n);
            /* log(sumexp) + max - target: O(1) terms that can cancel: floor 1 */
            cc_expect_close("ce loss", n, v, g, loss, n, 1e-5, 1.0);
            tsr_ce_logits_to_grad(grad, mx, se, targets, dloss, n, v, start);
            CU_ASSERT_EQUAL(tsr_cuda_ce_logits_to_grad(d_lg, d_mx, d_cse, d_tg, d_dl, n, v, start,
                                                       stream),
                            TSR_OK);
            cc_floats_to_host(g, d_lg, nv);
            int64_t wrong = 0;
            for (int64_t i = 0; i < n; i++) {
                int64_t tj = (int64_t)targets[i] - start;
                for (int64_t j = 0; j < v; j++) {
                    /* p * dloss: relative; at the target (p - 1) * dloss, a
                     * difference of terms of size |dloss| */
                    float gg = g[i * v + j], cc = grad[i * v + j];
                    double floor = j == tj ? fabs((double)dloss[i]) : 0.0;
                    double scale = fabs((double)cc) > floor ? fabs((double)cc) : floor;
                    int ok = scale == 0.0 ? gg == cc : fabs((double)gg - cc) <= 1e-5 * scale;
                    if (!ok && wrong++ == 0)
                        printf("\n  ce grad (%lld x %lld) at (%lld, %lld): gpu %.9g cpu %.9g\n",
                               (long long)n, (long long)v, (long long)i, (long long)j, gg, cc);
                }
            }
            CU_ASSERT_EQUAL(wrong, 0);
            void *dev[] = {d_tg, d_lg, d_dl, d_mx, d_se, d_tl, d_loss, d_cse, d_ctl};
            void *host[] = {targets, logits, dloss, mx, se, tl, loss, g, grad};
            cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
        }
    }
}

static void test_add_accumulate_scale(void)
{
    cudaStream_t stream = cc_stream();
    const int64_t sizes[] = {1, 33, 1000003};
    for (int s = 0; s < CC_COUNT(sizes); s++) {
        int64_t n = sizes[s];
        float *a = kc_alloc(n), *b = kc_alloc(n), *out = kc_alloc(n), *g = kc_alloc(n);
        kc_fill_normal(a, n, 71, 0.0f, 1.0f);
        kc_fill_normal(b, n, 72, 0.0f, 1.0f);
        float *d_a = cc_dev_floats(a, n), *d_b = cc_dev_floats(b, n), *d_out = cc_dev_floats(a, n);
        tsr_add_forward(out, a, b, n);
        CU_ASSERT_EQUAL(tsr_cuda_add_forward(d_out, d_a, d_b, n, stream), TSR_OK);
        cc_floats_to_host(g, d_out, n);
        cc_expect_bits("add", n, 1, g, out, (size_t)n * 4);
        CU_ASSERT_EQUAL(tsr_cuda_add_forward(d_a, d_a, d_b, n, stream), TSR_OK); /* out = a */
        cc_floats_to_host(g, d_a, n);
        cc_expect_bits("add in place", n, 1, g, out, (size_t)n * 4);
        tsr_accumulate(out, b, n); /* out = a + b + b */
        CU_ASSERT_EQUAL(tsr_cuda_accumulate(d_a, d_b, n, stream), TSR_OK);
        cc_floats_to_host(g, d_a, n);
        cc_expect_bits("accumulate", n, 1, g, out, (size_t)n * 4);
        tsr_scale(out, -0.3f, n);
        CU_ASSERT_EQUAL(tsr_cuda_scale(d_a, -0.3f, n, stream), TSR_OK);
        cc_floats_to_host(g, d_a, n);
        cc_expect_bits("scale", n, 1, g, out, (size_t)n * 4);
        void *dev[] = {d_a, d_b, d_out};
        void *host[] = {a, b, out, g};
        cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
    }
    cc_expect_refused(tsr_cuda_accumulate(NULL, NULL, 5, stream), TSR_ERR_INVALID_ARG,
                   "tsr_cuda_accumulate");
}

static void test_sum_squares(void)
{
    cudaStream_t stream = cc_stream();
    const int64_t sizes[] = {1, 33, 1000, 1000003, 5000001};
    for (int s = 0; s < CC_COUNT(sizes); s++) {
        int64_t n = sizes[s];
        float *x = kc_alloc(n);
        kc_fill_normal(x, n, 81, 0.0f, 1.0f);
        tsr_cuda_sumsq_plan plan;
        CU_ASSERT_EQUAL_FATAL(tsr_cuda_sumsq_plan_make(n, "test", &plan), TSR_OK);
        float *d_x = cc_dev_floats(x, n);
        void *ws = cc_dev_from(NULL, (size_t)plan.workspace_bytes);
        double *d_out = cc_dev_from(NULL, 2 * sizeof(double)), got[2];
        CU_ASSERT_EQUAL(tsr_cuda_sum_squares(d_out, d_x, n, ws, (size_t)plan.workspace_bytes,
                                             stream),
                        TSR_OK);
        CU_ASSERT_EQUAL(tsr_cuda_sum_squares(d_out + 1, d_x, n, ws, (size_t)plan.workspace_bytes,
                                             stream),
                        TSR_OK);
        cc_to_host(got, d_out, sizeof got);
        double want = tsr_sum_squares(x, n);
        /* double sums of positive terms in different orders: the CPU's longest
         * sequential chain (a lane of one of 64 chunks) bounds the relative
         * error by about 1e-12 at 5e6 elements */
        CU_ASSERT_TRUE(fabs(got[0] - want) <= 1e-11 * want);
        CU_ASSERT_TRUE(memcmp(&got[0], &got[1], sizeof(double)) == 0); /* run to run */
        cc_expect_refused(tsr_cuda_sum_squares(d_out, d_x, n, ws,
                                            (size_t)plan.workspace_bytes - 1, stream),
                       TSR_ERR_INVALID_ARG, "tsr_cuda_sum_squares");
        void *dev[] = {d_x, ws, d_out};
        void *host[] = {x};
        cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
    }
    double marker = 123.0, got = -1.0;
    double *d_out = cc_dev_from(&marker, sizeof marker);
    CU_ASSERT_EQUAL(tsr_cuda_sum_squares(d_out, NULL, 0, NULL, 0, stream), TSR_OK);
    cc_to_host(&got, d_out, sizeof got);
    CU_ASSERT_EQUAL(got, 0.0); /* empty: zero, as tsr_sum_squares returns */
    cudaFree(d_out);
}

/* tsr_adamw_update's statements with each operation rounded on its own
 * (this file is compiled with -ffp-contract=off): the device kernel's
 * arithmetic exactly */
static void adamw_rounded(float *param, const float *grad, float *m, float *v, int64_t n,
                          const tsr_cuda_adamw_factors *f)
{
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] * f->grad_scale;
        float p = param[i] * f->decay;
        float mi = f->beta1 * m[i] + f->one_minus_beta1 * g;
        float vi = f->beta2 * v[i] + f->one_minus_beta2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = p - f->step_size * (mi / (sqrtf(vi) / f->bc2_sqrt + f->eps));
    }
}

static void test_adamw(void)
{
    cudaStream_t stream = cc_stream();
    const int64_t sizes[] = {1, 33, 1000, 1000003};
    for (int s = 0; s < CC_COUNT(sizes); s++) {
        int64_t n = sizes[s];
        float *p = kc_alloc(n), *gr = kc_alloc(n), *m = kc_alloc(n), *v = kc_alloc(n);
        kc_fill_normal(p, n, 91, 0.0f, 1.0f);
        kc_fill_normal(gr, n, 92, 0.0f, 1.0f);
        kc_fill_normal(m, n, 93, 0.0f, 0.1f);
        kc_fill_uniform(v, n, 94, 0.0f, 0.01f);
        float *rp = copy_of(p, n), *rm = copy_of(m, n), *rv = copy_of(v, n);
        float *cp = copy_of(p, n), *cm = copy_of(m, n), *cv = copy_of(v, n);
        float *d_p = cc_dev_floats(p, n), *d_g = cc_dev_floats(gr, n), *d_m = cc_dev_floats(m, n);
        float *d_v = cc_dev_floats(v, n), *g = kc_alloc(n);
        for (int64_t step = 1; step <= 10; step += 9) { /* steps 1 and 10 */
            tsr_cuda_adamw_factors f;
            tsr_cuda_adamw_factors_make(&f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            adamw_rounded(rp, gr, rm, rv, n, &f);
            tsr_adamw_update(cp, gr, cm, cv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            CU_ASSERT_EQUAL(tsr_cuda_adamw_update(d_p, d_g, d_m, d_v, n, 1e-3f, 0.9f, 0.95f,
                                                  1e-8f, 0.1f, step, 0.5f, stream),
                            TSR_OK);
            cc_floats_to_host(g, d_p, n);
            cc_expect_bits("adamw param (rounded reference)", n, step, g, rp, (size_t)n * 4);
            /* against the CPU kernel, which may fuse: param ~ 1 moves by ~1e-3 */
            cc_expect_close("adamw param", n, step, g, cp, n, 1e-5, 1e-3);
            cc_floats_to_host(g, d_m, n);
            cc_expect_bits("adamw m (rounded reference)", n, step, g, rm, (size_t)n * 4);
            /* b1 m + (1 - b1) g can cancel: its terms are ~0.1, and at step
             * 10 each side continues from its own step-1 state: floor 1e-2 */
            cc_expect_close("adamw m", n, step, g, cm, n, 1e-5, 1e-2);
            cc_floats_to_host(g, d_v, n);
            cc_expect_bits("adamw v (rounded reference)", n, step, g, rv, (size_t)n * 4);
            cc_expect_close("adamw v", n, step, g, cv, n, 1e-5, 0.0); /* positive terms */
        }
        void *dev[] = {d_p, d_g, d_m, d_v};
        void *host[] = {p, gr, m, v, rp, rm, rv, cp, cm, cv, g};
        cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
    }
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_embedding),   TSR_TEST(test_cross_entropy), TSR_TEST(test_add_accumulate_scale),
    TSR_TEST(test_sum_squares), TSR_TEST(test_adamw),         TSR_TEST(cc_test_device_clean),
};

int main(void)
{
    return cc_main("kernels_cuda_train", cases, sizeof cases / sizeof cases[0]);
}
