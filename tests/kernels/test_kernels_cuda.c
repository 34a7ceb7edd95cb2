/*
 * test_kernels_cuda.c - the norm, activation, rotary and bf16 conversion
 * kernels of runtime/kernels/cuda/cuda_kernels.h (LayerNorm, RMSNorm,
 * GELU, SwiGLU, RoPE, fp32 <-> bf16) against their fp32 CPU kernels
 * (include/tessera/kernels.h) on random inputs of awkward sizes, on a
 * stream of its own. Exits 77 (skipped) where no CUDA device is visible.
 * Run by ctest -L gpu.
 *
 * Tolerances, per kernel where it is checked: the CPU and the device round
 * differently (FMA contraction, expf/sincosf of a few ulp, summation
 * orders), so fp32 results are compared as
 *     max_i |gpu_i - cpu_i| / max(|cpu_i|, floor) <= rtol
 * with rtol 1e-5 (1e-6 for the norms' rstd) and a floor that says where an
 * absolute error is the right measure (a difference of O(1) terms, a sum
 * over rows). The bf16 conversions do the same single rounding on both
 * sides and are compared bit for bit, as is the norms' weight gradient run
 * to run. Gradients start from non-zero values, so that backward's += is
 * what is checked.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "harness.h"
#include "kernel_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "tessera/kernels.h"

/* dinp of a norm is rstd times a difference of O(1) terms; with one column
 * rstd is about 1/sqrt(eps) and the exact LayerNorm gradient 0, so both
 * sides return rounding noise scaled by rstd: the floor is max(1, rstd) */
static double rstd_floor(const float *rstd, int64_t n)
{
    double m = 1.0;
    for (int64_t i = 0; i < n; i++)
        m = rstd[i] > m ? rstd[i] : m;
    return m;
}

/* dweight alone (neither dinp nor dbias asked), from dweight's prefill
 * in test_layernorm (seed 6) */
static float *layernorm_dweight_alone(const float *d_dy, const float *d_x, const float *d_w,
                                      const float *d_mean, const float *d_rstd, int64_t n,
                                      int64_t c)
{
    float *dw = kc_alloc(c);
    kc_fill_normal(dw, c, 6, 0.0f, 1.0f);
    float *d_dw = cc_dev_floats(dw, c);
    CU_ASSERT_EQUAL(tsr_cuda_layernorm_backward(NULL, d_dw, NULL, d_dy, d_x, d_w, d_mean, d_rstd,
                                                n, c, cc_stream()),
                    TSR_OK);
    cc_floats_to_host(dw, d_dw, c);
    cudaFree(d_dw);
    return dw;
}

static void test_layernorm(void)
{
    cudaStream_t stream = cc_stream();
    for (int a = 0; a < CC_COUNT(cc_row_counts); a++) {
        for (int b = 0; b < CC_COUNT(cc_col_counts); b++) {
            int64_t n = cc_row_counts[a], c = cc_col_counts[b], nc = n * c;
            float *x = kc_alloc(nc), *w = kc_alloc(c), *bias = kc_alloc(c), *dy = kc_alloc(nc);
            kc_fill_normal(x, nc, 1, 0.5f, 2.0f);
            kc_fill_normal(w, c, 2, 1.0f, 0.5f);
            kc_fill_normal(bias, c, 3, 0.0f, 0.5f);
            kc_fill_normal(dy, nc, 4, 0.0f, 1.0f);
            float *dx = kc_alloc(nc), *dw = kc_alloc(c), *db = kc_alloc(c);
            kc_fill_normal(dx, nc, 5, 0.0f, 1.0f);
            kc_fill_normal(dw, c, 6, 0.0f, 1.0f);
            kc_fill_normal(db, c, 7, 0.0f, 1.0f);
            float *d_x = cc_dev_floats(x, nc), *d_w = cc_dev_floats(w, c);
            float *d_b = cc_dev_floats(bias, c), *d_dy = cc_dev_floats(dy, nc);
            float *d_dx = cc_dev_floats(dx, nc), *d_dw = cc_dev_floats(dw, c);
            float *d_db = cc_dev_floats(db, c);
            float *d_out = cc_dev_floats(x, nc), *d_mean = cc_dev_floats(x, n);
            float *d_rstd = cc_dev_floats(x, n);
            float *out = kc_alloc(nc), *mean = kc_alloc(n), *rstd = kc_alloc(n);
            float *g_out = kc_alloc(nc), *g_mean = kc_alloc(n), *g_rstd = kc_alloc(n);
            float *g_dx = kc_alloc(nc), *g_dw = kc_alloc(c), *g_db = kc_alloc(c);
            tsr_layernorm_forward(out, mean, rstd, x, w, bias, n, c, 1e-5f);
            CU_ASSERT_EQUAL(tsr_cuda_layernorm_forward(d_out, d_mean, d_rstd, d_x, d_w, d_b, n, c,
                                                       1e-5f, stream),
                            TSR_OK);
            cc_floats_to_host(g_out, d_out, nc);
            cc_floats_to_host(g_mean, d_mean, n);
            cc_floats_to_host(g_rstd, d_rstd, n);
            /* out = norm * w + b, O(1) terms: floor 1; the statistics are sums in
             * double rounded to float once: within an ulp or two */
            cc_expect_close("layernorm out", n, c, g_out, out, nc, 1e-5, 1.0);
            cc_expect_close("layernorm mean", n, c, g_mean, mean, n, 1e-5, 1e-6);
            cc_expect_close("layernorm rstd", n, c, g_rstd, rstd, n, 1e-6, 0.0);
            /* backward from the CPU's statistics on both sides */
            float *d_cm = cc_dev_floats(mean, n), *d_cr = cc_dev_floats(rstd, n);
            tsr_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, n, c);
            CU_ASSERT_EQUAL(tsr_cuda_layernorm_backward(d_dx, d_dw, d_db, d_dy, d_x, d_w, d_cm,
                                                        d_cr, n, c, stream),
                            TSR_OK);
            cc_floats_to_host(g_dx, d_dx, nc);
            cc_floats_to_host(g_dw, d_dw, c);
            cc_floats_to_host(g_db, d_db, c);
            /* dinp: prefill + rstd times a difference of O(1) terms (see
             * rstd_floor). dweight, dbias: fp32 sums over n rows in another
             * order: floor sqrt(n) + 1, the size of the sum of n unit terms
             * plus the prefill */
            cc_expect_close("layernorm dinp", n, c, g_dx, dx, nc, 1e-5, rstd_floor(rstd, n));
            cc_expect_close("layernorm dweight", n, c, g_dw, dw, c, 1e-5, sqrt((double)n) + 1.0);
            cc_expect_close("layernorm dbias", n, c, g_db, db, c, 1e-5, sqrt((double)n) + 1.0);
            /* run to run: the same bits again from the same prefill */
            float *again = layernorm_dweight_alone(d_dy, d_x, d_w, d_cm, d_cr, n, c);
            float *first = layernorm_dweight_alone(d_dy, d_x, d_w, d_cm, d_cr, n, c);
            cc_expect_bits("layernorm dweight run to run", n, c, again, first, (size_t)c * 4);
            cc_expect_close("layernorm dweight alone", n, c, again, dw, c, 1e-5,
                            sqrt((double)n) + 1.0);
            void *dev[] = {d_x, d_w, d_b, d_dy, d_dx, d_dw, d_db, d_out, d_mean, d_rstd,
                           d_cm, d_cr};
            void *host[] = {x, w, bias, dy, dx, dw, db, out, mean, rstd, g_out, g_mean, g_rstd,
                            g_dx, g_dw, g_db, again, first};
            cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
        }
    }
    cc_expect_refused(tsr_cuda_layernorm_forward(NULL, NULL, NULL, NULL, NULL, NULL, -1, 4, 1e-5f,
                                              stream),
                   TSR_ERR_INVALID_ARG, "tsr_cuda_layernorm_forward");
    cc_expect_refused(tsr_cuda_layernorm_forward(NULL, NULL, NULL, NULL, NULL, NULL, 2, 4, 1e-5f,
                                              stream),
                   TSR_ERR_INVALID_ARG, "tsr_cuda_layernorm_forward");
    CU_ASSERT_EQUAL(tsr_cuda_layernorm_forward(NULL, NULL, NULL, NULL, NULL, NULL, 0, 4, 1e-5f,
                                               stream),
                    TSR_OK); /* empty: nothing launched */
}

static void test_rmsnorm(void)
{
    cudaStream_t stream = cc_stream();
    for (int a = 0; a < CC_COUNT(cc_row_counts); a++) {
        for (int b = 0; b < CC_COUNT(cc_col_counts); b++) {
            int64_t n = cc_row_counts[a], c = cc_col_counts[b], nc = n * c;
            float *x = kc_alloc(nc), *w = kc_alloc(c), *dy = kc_alloc(nc);
            kc_fill_normal(x, nc, 11, 0.0f, 2.0f);
            kc_fill_normal(w, c, 12, 1.0f, 0.5f);
            kc_fill_normal(dy, nc, 13, 0.0f, 1.0f);
            float *dx = kc_alloc(nc), *dw = kc_alloc(c);
            kc_fill_normal(dx, nc, 14, 0.0f, 1.0f);
            kc_fill_normal(dw, c, 15, 0.0f, 1.0f);
            float *d_x = cc_dev_floats(x, nc), *d_w = cc_dev_floats(w, c);
            float *d_dy = cc_dev_floats(dy, nc), *d_dx = cc_dev_floats(dx, nc);
            float *d_dw = cc_dev_floats(dw, c);
            float *d_out = cc_dev_floats(x, nc), *d_rstd = cc_dev_floats(x, n);
            float *out = kc_alloc(nc), *rstd = kc_alloc(n), *g_out = kc_alloc(nc);
            float *g_rstd = kc_alloc(n), *g_dx = kc_alloc(nc), *g_dw = kc_alloc(c);
            tsr_rmsnorm_forward(out, rstd, x, w, n, c, 1e-6f);
            CU_ASSERT_EQUAL(tsr_cuda_rmsnorm_forward(d_out, d_rstd, d_x, d_w, n, c, 1e-6f, stream),
                            TSR_OK);
            cc_floats_to_host(g_out, d_out, nc);
            cc_floats_to_host(g_rstd, d_rstd, n);
            /* out = x * rstd * w: products only, relative (floor for the tiny) */
            cc_expect_close("rmsnorm out", n, c, g_out, out, nc, 1e-5, 1e-6);
            cc_expect_close("rmsnorm rstd", n, c, g_rstd, rstd, n, 1e-6, 0.0);
            float *d_cr = cc_dev_floats(rstd, n);
            tsr_rmsnorm_backward(dx, dw, dy, x, w, rstd, n, c);
            CU_ASSERT_EQUAL(tsr_cuda_rmsnorm_backward(d_dx, d_dw, d_dy, d_x, d_w, d_cr, n, c,
                                                      stream),
                            TSR_OK);
            cc_floats_to_host(g_dx, d_dx, nc);
            cc_floats_to_host(g_dw, d_dw, c);
            /* as LayerNorm's: a difference of O(1) terms; sums over n rows */
            cc_expect_close("rmsnorm dinp", n, c, g_dx, dx, nc, 1e-5, rstd_floor(rstd, n));
            cc_expect_close("rmsnorm dweight", n, c, g_dw, dw, c, 1e-5, sqrt((double)n) + 1.0);
            void *dev[] = {d_x, d_w, d_dy, d_dx, d_dw, d_out, d_rstd, d_cr};
            void *host[] = {x, w, dy, dx, dw, out, rstd, g_out, g_rstd, g_dx, g_dw};
            cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
        }
    }
}

static void test_gelu(void)
{
    cudaStream_t stream = cc_stream();
    const int64_t sizes[] = {1, 33, 1000, 1000003};
    for (int s = 0; s < CC_COUNT(sizes); s++) {
        int64_t n = sizes[s];
        float *x = kc_alloc(n), *dy = kc_alloc(n), *dx = kc_alloc(n), *out = kc_alloc(n);
        kc_fill_normal(x, n, 21, 0.0f, 3.0f); /* into both tails */
        kc_fill_normal(dy, n, 22, 0.0f, 1.0f);
        kc_fill_normal(dx, n, 23, 0.0f, 1.0f);
        float *d_x = cc_dev_floats(x, n), *d_dy = cc_dev_floats(dy, n);
        float *d_dx = cc_dev_floats(dx, n), *d_out = cc_dev_floats(x, n), *g = kc_alloc(n);
        tsr_gelu_forward(out, x, n);
        CU_ASSERT_EQUAL(tsr_cuda_gelu_forward(d_out, d_x, n, stream), TSR_OK);
        cc_floats_to_host(g, d_out, n);
        /* relative; below 1e-6 the output is x exp(-2u) with |2u| > 14, where an
         * ulp of u moves the result by |2u| ulps: compared absolutely there */
        cc_expect_close("gelu out", n, 1, g, out, n, 1e-5, 1e-6);
        tsr_gelu_backward(dx, dy, x, n);
        CU_ASSERT_EQUAL(tsr_cuda_gelu_backward(d_dx, d_dy, d_x, n, stream), TSR_OK);
        cc_floats_to_host(g, d_dx, n);
        /* the derivative is a difference of O(1) terms (zero near x = -0.75) */
        cc_expect_close("gelu dinp", n, 1, g, dx, n, 1e-5, 1.0);
        /* in place */
        CU_ASSERT_EQUAL(tsr_cuda_gelu_forward(d_x, d_x, n, stream), TSR_OK);
        cc_floats_to_host(g, d_x, n);
        cc_expect_close("gelu out in place", n, 1, g, out, n, 1e-5, 1e-6);
        void *dev[] = {d_x, d_dy, d_dx, d_out};
        void *host[] = {x, dy, dx, out, g};
        cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
    }
    cc_expect_refused(tsr_cuda_gelu_forward(NULL, NULL, -2, stream), TSR_ERR_INVALID_ARG,
                   "tsr_cuda_gelu_forward");
}

static void test_swiglu(void)
{
    cudaStream_t stream = cc_stream();
    for (int a = 0; a < CC_COUNT(cc_row_counts); a++) {
        for (int b = 0; b < CC_COUNT(cc_col_counts); b++) {
            int64_t n = cc_row_counts[a], f = cc_col_counts[b], nf = n * f;
            float *x = kc_alloc(2 * nf), *dy = kc_alloc(nf), *dx = kc_alloc(2 * nf);
            float *out = kc_alloc(nf), *g_out = kc_alloc(nf), *g_dx = kc_alloc(2 * nf);
            kc_fill_normal(x, 2 * nf, 31, 0.0f, 2.0f);
            kc_fill_normal(dy, nf, 32, 0.0f, 1.0f);
            kc_fill_normal(dx, 2 * nf, 33, 0.0f, 1.0f);
            float *d_x = cc_dev_floats(x, 2 * nf), *d_dy = cc_dev_floats(dy, nf);
            float *d_dx = cc_dev_floats(dx, 2 * nf), *d_out = cc_dev_floats(dy, nf);
            tsr_swiglu_forward(out, x, n, f);
            CU_ASSERT_EQUAL(tsr_cuda_swiglu_forward(d_out, d_x, n, f, stream), TSR_OK);
            cc_floats_to_host(g_out, d_out, nf);
            /* products: relative, floor for the tiny (gate far below 0) */
            cc_expect_close("swiglu out", n, f, g_out, out, nf, 1e-5, 1e-6);
            tsr_swiglu_backward(dx, dy, x, n, f);
            CU_ASSERT_EQUAL(tsr_cuda_swiglu_backward(d_dx, d_dy, d_x, n, f, stream), TSR_OK);
            cc_floats_to_host(g_dx, d_dx, 2 * nf);
            /* d gate has the factor 1 + g (1 - s), zero near g = -1.28: floor 1 */
            cc_expect_close("swiglu dinp", n, f, g_dx, dx, 2 * nf, 1e-5, 1.0);
            void *dev[] = {d_x, d_dy, d_dx, d_out};
            void *host[] = {x, dy, dx, out, g_out, g_dx};
            cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
        }
    }
}

static void test_rope(void)
{
    cudaStream_t stream = cc_stream();
    /* (B, T, H, D); t_offset 4000 puts angles past 4000 rad, where one ulp of a
     * frequency would show */
    const int64_t shapes[][4] = {{1, 1, 1, 2}, {2, 7, 3, 64}, {1, 129, 2, 130}, {2, 33, 4, 512}};
    for (int s = 0; s < CC_COUNT(shapes); s++) {
        int64_t b = shapes[s][0], t = shapes[s][1], h = shapes[s][2], d = shapes[s][3];
        int64_t n = b * t * h * d;
        float *x = kc_alloc(n), *dy = kc_alloc(n), *dx = kc_alloc(n), *out = kc_alloc(n);
        float *g = kc_alloc(n);
        kc_fill_normal(x, n, 41, 0.0f, 1.0f);
        kc_fill_normal(dy, n, 42, 0.0f, 1.0f);
        kc_fill_normal(dx, n, 43, 0.0f, 1.0f);
        float *d_x = cc_dev_floats(x, n), *d_dy = cc_dev_floats(dy, n);
        float *d_dx = cc_dev_floats(dx, n), *d_out = cc_dev_floats(dy, n);
        tsr_rope_forward(out, x, b, t, h, d, 4000, 10000.0f);
        CU_ASSERT_EQUAL(tsr_cuda_rope_forward(d_out, d_x, b, t, h, d, 4000, 10000.0f, stream),
                        TSR_OK);
        cc_floats_to_host(g, d_out, n);
        /* a rotation of unit-normal pairs: sincosf's ulps scale with the pair's
         * size, floor 1 */
        cc_expect_close("rope out", b * t, h * d, g, out, n, 1e-5, 1.0);
        CU_ASSERT_EQUAL(tsr_cuda_rope_forward(d_x, d_x, b, t, h, d, 4000, 10000.0f, stream),
                        TSR_OK);
        cc_floats_to_host(g, d_x, n);
        cc_expect_close("rope out in place", b * t, h * d, g, out, n, 1e-5, 1.0);
        tsr_rope_backward(dx, dy, b, t, h, d, 4000, 10000.0f);
        CU_ASSERT_EQUAL(tsr_cuda_rope_backward(d_dx, d_dy, b, t, h, d, 4000, 10000.0f, stream),
                        TSR_OK);
        cc_floats_to_host(g, d_dx, n);
        cc_expect_close("rope dx", b * t, h * d, g, dx, n, 1e-5, 1.0);
        void *dev[] = {d_x, d_dy, d_dx, d_out};
        void *host[] = {x, dy, dx, out, g};
        cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
    }
    float *d = cc_dev_floats(NULL, 0);
    cc_expect_refused(tsr_cuda_rope_forward(d, d, 1, 1, 1, 3, 0, 10000.0f, stream),
                   TSR_ERR_INVALID_ARG, "tsr_cuda_rope_forward");
    cc_expect_refused(tsr_cuda_rope_forward(d, d, 1, 1, 1, 514, 0, 10000.0f, stream),
                   TSR_ERR_UNSUPPORTED, "tsr_cuda_rope_forward");
    cudaFree(d);
}

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float float_of(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static void test_bf16(void)
{
    cudaStream_t stream = cc_stream();
    /* zeros, ones, infinities; quiet, signalling and payload NaNs of both
     * signs; denormals; the smallest normal; ties to even (0x3f808000 down,
     * 0x3f818000 up), just below and above a tie; FLT_MAX and the tie below
     * it, both rounding to inf */
    static const uint32_t special[] = {
        0x00000000u, 0x80000000u, 0x3f800000u, 0xbf800000u, 0x7f800000u, 0xff800000u,
        0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fa00000u, 0xff800001u, 0x7fffffffu,
        0x00000001u, 0x007fffffu, 0x80000001u, 0x807fffffu, 0x00800000u, 0x80800000u,
        0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x7f7fffffu, 0x7f7f8000u,
        0xff7fffffu, 0x7f7f7fffu};
    /* hand-derived results of a few, independent of the CPU code */
    CU_ASSERT_EQUAL(tsr_bf16_of_float(float_of(0x3f808000u)), 0x3f80);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(float_of(0x3f818000u)), 0x3f82);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(float_of(0x7f800001u)), 0x7fc0);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(float_of(0x807fffffu)), 0x8000);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(float_of(0x7f7fffffu)), 0x7f80);
    int64_t ns = (int64_t)(sizeof special / sizeof special[0]), n = ns + 1000000;
    float *src = kc_alloc(n), *back = kc_alloc(n), *g_back = kc_alloc(n);
    uint16_t *h = malloc((size_t)n * 2), *g_h = malloc((size_t)n * 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_h);
    uint64_t state = 0x9e3779b97f4a7c15ull; /* xorshift64: every bit pattern is likely */
    for (int64_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        src[i] = float_of(i < ns ? special[i] : (uint32_t)(state >> 32));
    }
    for (int64_t i = 0; i < n; i++)
        h[i] = tsr_bf16_of_float(src[i]);
    float *d_src = cc_dev_floats(src, n), *d_f = cc_dev_floats(src, n);
    uint16_t *d_h = cc_dev_from(NULL, (size_t)n * 2);
    CU_ASSERT_EQUAL(tsr_cuda_bf16_from_floats(d_h, d_src, n, stream), TSR_OK);
    cc_to_host(g_h, d_h, (size_t)n * 2);
    cc_expect_bits("bf16 from floats", n, 1, g_h, h, (size_t)n * 2);
    tsr_bf16_round_floats(back, src, n);
    CU_ASSERT_EQUAL(tsr_cuda_bf16_round_floats(d_f, d_src, n, stream), TSR_OK);
    cc_floats_to_host(g_back, d_f, n);
    cc_expect_bits("bf16 round floats", n, 1, g_back, back, (size_t)n * 4);
    CU_ASSERT_EQUAL(tsr_cuda_bf16_round_floats(d_src, d_src, n, stream), TSR_OK); /* in place */
    cc_floats_to_host(g_back, d_src, n);
    cc_expect_bits("bf16 round floats in place", n, 1, g_back, back, (size_t)n * 4);
    /* every bf16 back to fp32 */
    for (int64_t i = 0; i < 65536; i++) {
        h[i] = (uint16_t)i;
        back[i] = tsr_float_of_bf16((uint16_t)i);
    }
    CU_ASSERT_EQUAL(cudaMemcpy(d_h, h, 65536 * 2, cudaMemcpyHostToDevice), cudaSuccess);
    CU_ASSERT_EQUAL(tsr_cuda_floats_from_bf16(d_f, d_h, 65536, stream), TSR_OK);
    cc_floats_to_host(g_back, d_f, 65536);
    cc_expect_bits("floats from bf16", 65536, 1, g_back, back, 65536 * 4);
    CU_ASSERT_EQUAL(bits_of(g_back[0x7fc0]), 0x7fc00000u);
    void *dev[] = {d_src, d_f, d_h};
    void *host[] = {src, back, g_back, h, g_h};
    cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_layernorm), TSR_TEST(test_rmsnorm), TSR_TEST(test_gelu),
    TSR_TEST(test_swiglu),    TSR_TEST(test_rope),    TSR_TEST(test_bf16),
    TSR_TEST(cc_test_device_clean),
};

int main(void)
{
    return cc_main("kernels_cuda", cases, sizeof cases / sizeof cases[0]);
}
