/*
 * test_kernels_cuda.c - every kernel of runtime/kernels/cuda/cuda_kernels.h
 * against its fp32 CPU kernel (include/tessera/kernels.h) on random
 * inputs of awkward sizes, on a stream of its own. Exits 77 (skipped)
 * where no CUDA device is visible. Run by ctest -L gpu.
 *
 * Tolerances, per kernel where it is checked: the CPU and the device round
 * differently (FMA contraction, expf/logf/sincosf of a few ulp, summation
 * orders), so fp32 results are compared as
 *     max_i |gpu_i - cpu_i| / max(|cpu_i|, floor) <= rtol
 * with rtol 1e-5 and a floor that says where an absolute error is the
 * right measure (a difference of O(1) terms, a sum over rows). Kernels
 * that do the same single rounding per element on both sides (copies,
 * add/accumulate/scale, the embedding's ordered scatter-add, bf16
 * conversion, the max) are compared bit for bit. Gradients start from
 * non-zero values, so that backward's += is what is checked.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_device.h"
#include "harness.h"
#include "kernel_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch_geometry.h"
#include "tessera/kernels.h"

static cudaStream_t stream;

static const int64_t row_counts[] = {1, 7, 129, 600}; /* 600: more rows than resident blocks */
static const int64_t col_counts[] = {1, 33, 769, 1000};
#define NSHAPES(a) ((int)(sizeof a / sizeof a[0]))

/* a device copy of host (NULL: uninitialised) */
static void *dev_from(const void *host, size_t bytes)
{
    void *d = NULL;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&d, bytes > 0 ? bytes : 1), cudaSuccess);
    if (bytes > 0 && host != NULL)
        CU_ASSERT_EQUAL_FATAL(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    return d;
}

/* waits for the stream, then copies back */
static void to_host(void *host, const void *dev, size_t bytes)
{
    CU_ASSERT_EQUAL_FATAL(cudaStreamSynchronize(stream), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}

static float *dev_floats(const float *host, int64_t n)
{
    return dev_from(host, (size_t)n * sizeof(float));
}

static void floats_to_host(float *host, const float *dev, int64_t n)
{
    to_host(host, dev, (size_t)n * sizeof(float));
}

static float *copy_of(const float *x, int64_t n)
{
    float *y = kc_alloc(n);
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

static void expect_close(const char *what, int64_t rows, int64_t cols, const float *gpu,
                         const float *cpu, int64_t n, double rtol, double floor)
{
    double worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double scale = fabs((double)cpu[i]) > floor ? fabs((double)cpu[i]) : floor;
        double diff = fabs((double)gpu[i] - (double)cpu[i]);
        double e = scale > 0.0 ? diff / scale : (diff == 0.0 ? 0.0 : INFINITY);
        if (!(e <= worst)) { /* NaN counts as the worst */
            worst = e;
            at = i;
        }
    }
    if (!(worst <= rtol))
        printf("\n  %s (%lld x %lld): error %.3g > %.1g at %lld: gpu %.9g cpu %.9g\n", what,
               (long long)rows, (long long)cols, worst, rtol, (long long)at, gpu[at], cpu[at]);
    CU_ASSERT_TRUE(worst <= rtol);
}

static void expect_bits(const char *what, int64_t rows, int64_t cols, const void *gpu,
                        const void *cpu, size_t bytes)
{
    int same = memcmp(gpu, cpu, bytes) == 0;
    if (!same)
        printf("\n  %s (%lld x %lld): not bitwise the CPU's\n", what, (long long)rows,
               (long long)cols);
    CU_ASSERT_TRUE(same);
}

/* a failed call returns the status and names the kernel */
static void expect_refused(tsr_status st, tsr_status want, const char *kernel)
{
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), kernel));
}

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

static void test_layernorm(void)
{
    for (int a = 0; a < NSHAPES(row_counts); a++) {
        for (int b = 0; b < NSHAPES(col_counts); b++) {
            int64_t n = row_counts[a], c = col_counts[b], nc = n * c;
            float *x = kc_alloc(nc), *w = kc_alloc(c), *bias = kc_alloc(c), *dy = kc_alloc(nc);
            kc_fill_normal(x, nc, 1, 0.5f, 2.0f);
            kc_fill_normal(w, c, 2, 1.0f, 0.5f);
            kc_fill_normal(bias, c, 3, 0.0f, 0.5f);
            kc_fill_normal(dy, nc, 4, 0.0f, 1.0f);
            float *dx = kc_alloc(nc), *dw = kc_alloc(c), *db = kc_alloc(c);
            kc_fill_normal(dx, nc, 5, 0.0f, 1.0f);
            kc_fill_normal(dw, c, 6, 0.0f, 1.0f);
            kc_fill_normal(db, c, 7, 0.0f, 1.0f);
            float *d_x = dev_floats(x, nc), *d_w = dev_floats(w, c), *d_b = dev_floats(bias, c);
            float *d_dy = dev_floats(dy, nc), *d_dx = dev_floats(dx, nc);
            float *d_dw = dev_floats(dw, c), *d_db = dev_floats(db, c);
            float *d_out = dev_floats(x, nc), *d_mean = dev_floats(x, n), *d_rstd = dev_floats(x, n);
            float *out = kc_alloc(nc), *mean = kc_alloc(n), *rstd = kc_alloc(n);
            float *g_out = kc_alloc(nc), *g_mean = kc_alloc(n), *g_rstd = kc_alloc(n);
            float *g_dx = kc_alloc(nc), *g_dw = kc_alloc(c), *g_db = kc_alloc(c);
            tsr_layernorm_forward(out, mean, rstd, x, w, bias, n, c, 1e-5f);
            CU_ASSERT_EQUAL(tsr_cuda_layernorm_forward(d_out, d_mean, d_rstd, d_x, d_w, d_b, n, c,
                                                       1e-5f, stream),
                            TSR_OK);
            floats_to_host(g_out, d_out, nc);
            floats_to_host(g_mean, d_mean, n);
            floats_to_host(g_rstd, d_rstd, n);
            /* out = norm * w + b, O(1) terms: floor 1; the statistics are sums in
             * double rounded to float once: within an ulp or two */
            expect_close("layernorm out", n, c, g_out, out, nc, 1e-5, 1.0);
            expect_close("layernorm mean", n, c, g_mean, mean, n, 1e-5, 1e-6);
            expect_close("layernorm rstd", n, c, g_rstd, rstd, n, 1e-6, 0.0);
            /* backward from the CPU's statistics on both sides */
            float *d_cm = dev_floats(mean, n), *d_cr = dev_floats(rstd, n);
            tsr_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, n, c);
            CU_ASSERT_EQUAL(tsr_cuda_layernorm_backward(d_dx, d_dw, d_db, d_dy, d_x, d_w, d_cm,
                                                        d_cr, n, c, stream),
                            TSR_OK);
            floats_to_host(g_dx, d_dx, nc);
            floats_to_host(g_dw, d_dw, c);
            floats_to_host(g_db, d_db, c);
            /* dinp: prefill + rstd times a difference of O(1) terms (see
             * rstd_floor). dweight, dbias: fp32 sums over n rows in another
             * order: floor sqrt(n) + 1, the size of the sum of n unit terms
             * plus the prefill */
            expect_close("layernorm dinp", n, c, g_dx, dx, nc, 1e-5, rstd_floor(rstd, n));
            expect_close("layernorm dweight", n, c, g_dw, dw, c, 1e-5, sqrt((double)n) + 1.0);
            expect_close("layernorm dbias", n, c, g_db, db, c, 1e-5, sqrt((double)n) + 1.0);
            /* run to run: the same bits again from the same prefill */
            float *again = kc_alloc(c);
            kc_fill_normal(again, c, 6, 0.0f, 1.0f);
            float *d_again = dev_floats(again, c);
            CU_ASSERT_EQUAL(tsr_cuda_layernorm_backward(NULL, d_again, NULL, d_dy, d_x, d_w, d_cm,
                                                        d_cr, n, c, stream),
                            TSR_OK);
            floats_to_host(again, d_again, c);
            float *first = kc_alloc(c);
            kc_fill_normal(first, c, 6, 0.0f, 1.0f);
            float *d_first = dev_floats(first, c);
            CU_ASSERT_EQUAL(tsr_cuda_layernorm_backward(NULL, d_first, NULL, d_dy, d_x, d_w, d_cm,
                                                        d_cr, n, c, stream),
                            TSR_OK);
            floats_to_host(first, d_first, c);
            expect_bits("layernorm dweight run to run", n, c, again, first, (size_t)c * 4);
            expect_close("layernorm dweight alone", n, c, again, dw, c, 1e-5, sqrt((double)n) + 1.0);
            void *bufs[] = {d_x, d_w, d_b, d_dy, d_dx, d_dw, d_db, d_out, d_mean, d_rstd,
                            d_cm, d_cr, d_again, d_first};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                cudaFree(bufs[i]);
            float *hosts[] = {x, w, bias, dy, dx, dw, db, out, mean, rstd, g_out, g_mean, g_rstd,
                              g_dx, g_dw, g_db, again, first};
            for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
                free(hosts[i]);
        }
    }
    expect_refused(tsr_cuda_layernorm_forward(NULL, NULL, NULL, NULL, NULL, NULL, -1, 4, 1e-5f,
                                              stream),
                   TSR_ERR_INVALID_ARG, "tsr_cuda_layernorm_forward");
    expect_refused(tsr_cuda_layernorm_forward(NULL, NULL, NULL, NULL, NULL, NULL, 2, 4, 1e-5f,
                                              stream),
                   TSR_ERR_INVALID_ARG, "tsr_cuda_layernorm_forward");
    CU_ASSERT_EQUAL(tsr_cuda_layernorm_forward(NULL, NULL, NULL, NULL, NULL, NULL, 0, 4, 1e-5f,
                                               stream),
                    TSR_OK); /* empty: nothing launched */
}

static void test_rmsnorm(void)
{
    for (int a = 0; a < NSHAPES(row_counts); a++) {
        for (int b = 0; b < NSHAPES(col_counts); b++) {
            int64_t n = row_counts[a], c = col_counts[b], nc = n * c;
            float *x = kc_alloc(nc), *w = kc_alloc(c), *dy = kc_alloc(nc);
            kc_fill_normal(x, nc, 11, 0.0f, 2.0f);
            kc_fill_normal(w, c, 12, 1.0f, 0.5f);
            kc_fill_normal(dy, nc, 13, 0.0f, 1.0f);
            float *dx = kc_alloc(nc), *dw = kc_alloc(c);
            kc_fill_normal(dx, nc, 14, 0.0f, 1.0f);
            kc_fill_normal(dw, c, 15, 0.0f, 1.0f);
            float *d_x = dev_floats(x, nc), *d_w = dev_floats(w, c), *d_dy = dev_floats(dy, nc);
            float *d_dx = dev_floats(dx, nc), *d_dw = dev_floats(dw, c);
            float *d_out = dev_floats(x, nc), *d_rstd = dev_floats(x, n);
            float *out = kc_alloc(nc), *rstd = kc_alloc(n), *g_out = kc_alloc(nc);
            float *g_rstd = kc_alloc(n), *g_dx = kc_alloc(nc), *g_dw = kc_alloc(c);
            tsr_rmsnorm_forward(out, rstd, x, w, n, c, 1e-6f);
            CU_ASSERT_EQUAL(tsr_cuda_rmsnorm_forward(d_out, d_rstd, d_x, d_w, n, c, 1e-6f, stream),
                            TSR_OK);
            floats_to_host(g_out, d_out, nc);
            floats_to_host(g_rstd, d_rstd, n);
            /* out = x * rstd * w: products only, relative (floor for the tiny) */
            expect_close("rmsnorm out", n, c, g_out, out, nc, 1e-5, 1e-6);
            expect_close("rmsnorm rstd", n, c, g_rstd, rstd, n, 1e-6, 0.0);
            float *d_cr = dev_floats(rstd, n);
            tsr_rmsnorm_backward(dx, dw, dy, x, w, rstd, n, c);
            CU_ASSERT_EQUAL(tsr_cuda_rmsnorm_backward(d_dx, d_dw, d_dy, d_x, d_w, d_cr, n, c,
                                                      stream),
                            TSR_OK);
            floats_to_host(g_dx, d_dx, nc);
            floats_to_host(g_dw, d_dw, c);
            /* as LayerNorm's: a difference of O(1) terms; sums over n rows */
            expect_close("rmsnorm dinp", n, c, g_dx, dx, nc, 1e-5, rstd_floor(rstd, n));
            expect_close("rmsnorm dweight", n, c, g_dw, dw, c, 1e-5, sqrt((double)n) + 1.0);
            void *bufs[] = {d_x, d_w, d_dy, d_dx, d_dw, d_out, d_rstd, d_cr};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                cudaFree(bufs[i]);
            float *hosts[] = {x, w, dy, dx, dw, out, rstd, g_out, g_rstd, g_dx, g_dw};
            for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
                free(hosts[i]);
        }
    }
}

static void test_gelu(void)
{
    const int64_t sizes[] = {1, 33, 1000, 1000003};
    for (int s = 0; s < NSHAPES(sizes); s++) {
        int64_t n = sizes[s];
        float *x = kc_alloc(n), *dy = kc_alloc(n), *dx = kc_alloc(n), *out = kc_alloc(n);
        kc_fill_normal(x, n, 21, 0.0f, 3.0f); /* into both tails */
        kc_fill_normal(dy, n, 22, 0.0f, 1.0f);
        kc_fill_normal(dx, n, 23, 0.0f, 1.0f);
        float *d_x = dev_floats(x, n), *d_dy = dev_floats(dy, n), *d_dx = dev_floats(dx, n);
        float *d_out = dev_floats(x, n), *g = kc_alloc(n);
        tsr_gelu_forward(out, x, n);
        CU_ASSERT_EQUAL(tsr_cuda_gelu_forward(d_out, d_x, n, stream), TSR_OK);
        floats_to_host(g, d_out, n);
        /* relative; below 1e-6 the output is x exp(-2u) with |2u| > 14, where an
         * ulp of u moves the result by |2u| ulps: compared absolutely there */
        expect_close("gelu out", n, 1, g, out, n, 1e-5, 1e-6);
        tsr_gelu_backward(dx, dy, x, n);
        CU_ASSERT_EQUAL(tsr_cuda_gelu_backward(d_dx, d_dy, d_x, n, stream), TSR_OK);
        floats_to_host(g, d_dx, n);
        /* the derivative is a difference of O(1) terms (zero near x = -0.75) */
        expect_close("gelu dinp", n, 1, g, dx, n, 1e-5, 1.0);
        /* in place */
        CU_ASSERT_EQUAL(tsr_cuda_gelu_forward(d_x, d_x, n, stream), TSR_OK);
        floats_to_host(g, d_x, n);
        expect_close("gelu out in place", n, 1, g, out, n, 1e-5, 1e-6);
        cudaFree(d_x);
        cudaFree(d_dy);
        cudaFree(d_dx);
        cudaFree(d_out);
        free(x);
        free(dy);
        free(dx);
        free(out);
        free(g);
    }
    expect_refused(tsr_cuda_gelu_forward(NULL, NULL, -2, stream), TSR_ERR_INVALID_ARG,
                   "tsr_cuda_gelu_forward");
}

static void test_swiglu(void)
{
    for (int a = 0; a < NSHAPES(row_counts); a++) {
        for (int b = 0; b < NSHAPES(col_counts); b++) {
            int64_t n = row_counts[a], f = col_counts[b], nf = n * f;
            float *x = kc_alloc(2 * nf), *dy = kc_alloc(nf), *dx = kc_alloc(2 * nf);
            float *out = kc_alloc(nf), *g_out = kc_alloc(nf), *g_dx = kc_alloc(2 * nf);
            kc_fill_normal(x, 2 * nf, 31, 0.0f, 2.0f);
            kc_fill_normal(dy, nf, 32, 0.0f, 1.0f);
            kc_fill_normal(dx, 2 * nf, 33, 0.0f, 1.0f);
            float *d_x = dev_floats(x, 2 * nf), *d_dy = dev_floats(dy, nf);
            float *d_dx = dev_floats(dx, 2 * nf), *d_out = dev_floats(dy, nf);
            tsr_swiglu_forward(out, x, n, f);
            CU_ASSERT_EQUAL(tsr_cuda_swiglu_forward(d_out, d_x, n, f, stream), TSR_OK);
            floats_to_host(g_out, d_out, nf);
            /* products: relative, floor for the tiny (gate far below 0) */
            expect_close("swiglu out", n, f, g_out, out, nf, 1e-5, 1e-6);
            tsr_swiglu_backward(dx, dy, x, n, f);
            CU_ASSERT_EQUAL(tsr_cuda_swiglu_backward(d_dx, d_dy, d_x, n, f, stream), TSR_OK);
            floats_to_host(g_dx, d_dx, 2 * nf);
            /* d gate has the factor 1 + g (1 - s), zero near g = -1.28: floor 1 */
            expect_close("swiglu dinp", n, f, g_dx, dx, 2 * nf, 1e-5, 1.0);
            cudaFree(d_x);
            cudaFree(d_dy);
            cudaFree(d_dx);
            cudaFree(d_out);
            free(x);
            free(dy);
            free(dx);
            free(out);
            free(g_out);
            free(g_dx);
        }
    }
}

static void test_rope(void)
{
    /* (B, T, H, D); t_offset 4000 puts angles past 4000 rad, where one ulp of a
     * frequency would show */
    const int64_t shapes[][4] = {{1, 1, 1, 2}, {2, 7, 3, 64}, {1, 129, 2, 130}, {2, 33, 4, 512}};
    for (int s = 0; s < NSHAPES(shapes); s++) {
        int64_t b = shapes[s][0], t = shapes[s][1], h = shapes[s][2], d = shapes[s][3];
        int64_t n = b * t * h * d;
        float *x = kc_alloc(n), *dy = kc_alloc(n), *dx = kc_alloc(n), *out = kc_alloc(n);
        float *g = kc_alloc(n);
        kc_fill_normal(x, n, 41, 0.0f, 1.0f);
        kc_fill_normal(dy, n, 42, 0.0f, 1.0f);
        kc_fill_normal(dx, n, 43, 0.0f, 1.0f);
        float *d_x = dev_floats(x, n), *d_dy = dev_floats(dy, n), *d_dx = dev_floats(dx, n);
        float *d_out = dev_floats(dy, n);
        tsr_rope_forward(out, x, b, t, h, d, 4000, 10000.0f);
        CU_ASSERT_EQUAL(tsr_cuda_rope_forward(d_out, d_x, b, t, h, d, 4000, 10000.0f, stream),
                        TSR_OK);
        floats_to_host(g, d_out, n);
        /* a rotation of unit-normal pairs: sincosf's ulps scale with the pair's
         * size, floor 1 */
        expect_close("rope out", b * t, h * d, g, out, n, 1e-5, 1.0);
        CU_ASSERT_EQUAL(tsr_cuda_rope_forward(d_x, d_x, b, t, h, d, 4000, 10000.0f, stream),
                        TSR_OK);
        floats_to_host(g, d_x, n);
        expect_close("rope out in place", b * t, h * d, g, out, n, 1e-5, 1.0);
        tsr_rope_backward(dx, dy, b, t, h, d, 4000, 10000.0f);
        CU_ASSERT_EQUAL(tsr_cuda_rope_backward(d_dx, d_dy, b, t, h, d, 4000, 10000.0f, stream),
                        TSR_OK);
        floats_to_host(g, d_dx, n);
        expect_close("rope dx", b * t, h * d, g, dx, n, 1e-5, 1.0);
        cudaFree(d_x);
        cudaFree(d_dy);
        cudaFree(d_dx);
        cudaFree(d_out);
        free(x);
        free(dy);
        free(dx);
        free(out);
        free(g);
    }
    float *d = dev_floats(NULL, 0);
    expect_refused(tsr_cuda_rope_forward(d, d, 1, 1, 1, 3, 0, 10000.0f, stream),
                   TSR_ERR_INVALID_ARG, "tsr_cuda_rope_forward");
    expect_refused(tsr_cuda_rope_forward(d, d, 1, 1, 1, 514, 0, 10000.0f, stream),
                   TSR_ERR_UNSUPPORTED, "tsr_cuda_rope_forward");
    cudaFree(d);
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
    int32_t *tokens = malloc((size_t)n * sizeof(int32_t));
    CU_ASSERT_PTR_NOT_NULL_FATAL(tokens);
    fill_tokens(tokens, n, (uint64_t)(n + c), lo, span);
    int64_t nc = n * c, vc = vocab_local * c;
    float *table = kc_alloc(vc), *out = kc_alloc(nc), *g_out = kc_alloc(nc);
    float *dy = kc_alloc(nc), *dt = kc_alloc(vc), *g_dt = kc_alloc(vc), *g_dt2 = kc_alloc(vc);
    kc_fill_normal(table, vc, 51, 0.0f, 1.0f);
    kc_fill_normal(dy, nc, 52, 0.0f, 1.0f);
    kc_fill_normal(dt, vc, 53, 0.0f, 1.0f);
    int32_t *d_tok = dev_from(tokens, (size_t)n * sizeof(int32_t));
    float *d_table = dev_floats(table, vc), *d_out = dev_floats(dy, nc), *d_dy = dev_floats(dy, nc);
    float *d_dt = dev_floats(dt, vc), *d_dt2 = dev_floats(dt, vc);
    tsr_embedding_forward(out, tokens, table, n, c, vocab_start, vocab_local);
    CU_ASSERT_EQUAL(tsr_cuda_embedding_forward(d_out, d_tok, d_table, n, c, vocab_start,
                                               vocab_local, stream),
                    TSR_OK);
    floats_to_host(g_out, d_out, nc);
    expect_bits("embedding out", n, c, g_out, out, (size_t)nc * 4);
    CU_ASSERT_EQUAL(tsr_cuda_embedding_backward(d_dt, d_dy, d_tok, n, c, vocab_start, vocab_local,
                                                stream),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_cuda_embedding_backward(d_dt2, d_dy, d_tok, n, c, vocab_start,
                                                vocab_local, stream),
                    TSR_OK);
    tsr_embedding_backward(dt, dy, tokens, n, c, vocab_start, vocab_local);
    floats_to_host(g_dt, d_dt, vc);
    floats_to_host(g_dt2, d_dt2, vc);
    /* every element adds its tokens' rows in token order, one fp32 add each,
     * on both sides: bitwise, and so bitwise run to run */
    expect_bits("embedding dtable", n, c, g_dt, dt, (size_t)vc * 4);
    expect_bits("embedding dtable run to run", n, c, g_dt2, g_dt, (size_t)vc * 4);
    cudaFree(d_tok);
    cudaFree(d_table);
    cudaFree(d_out);
    cudaFree(d_dy);
    cudaFree(d_dt);
    cudaFree(d_dt2);
    free(tokens);
    free(table);
    free(out);
    free(g_out);
    free(dy);
    free(dt);
    free(g_dt);
    free(g_dt2);
}

static void test_embedding(void)
{
    /* tokens in [80, 170) against the slice [100, 150): some below, some above */
    for (int b = 0; b < 3; b++) /* c = 1, 33, 769 */
        embedding_case(1000, col_counts[b], 100, 50, 80, 90);
    embedding_case(1, 33, 100, 50, 100, 1);
    /* 4096 tokens over 7 rows (~585 each), 1000 columns: many collisions */
    embedding_case(4096, 1000, 0, 7, 0, 7);
    /* a wide slice, 64 slots of many rows each */
    embedding_case(2000, 33, 1000, 30000, 900, 31000);
}

static void test_cross_entropy(void)
{
    for (int a = 0; a < 3; a++) { /* rows 1, 7, 129 */
        for (int b = 0; b < NSHAPES(col_counts); b++) {
            int64_t n = row_counts[a], v = col_counts[b], nv = n * v, start = 1000;
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
            int32_t *d_tg = dev_from(targets, (size_t)n * sizeof(int32_t));
            float *d_lg = dev_floats(logits, nv), *d_dl = dev_floats(dloss, n);
            float *d_mx = dev_floats(dloss, n), *d_se = dev_floats(dloss, n);
            float *d_tl = dev_floats(dloss, n), *d_loss = dev_floats(dloss, n);
            tsr_ce_row_max(mx, logits, n, v);
            CU_ASSERT_EQUAL(tsr_cuda_ce_row_max(d_mx, d_lg, n, v, stream), TSR_OK);
            floats_to_host(g, d_mx, n);
            expect_bits("ce row_max", n, v, g, mx, (size_t)n * 4); /* a max is exact */
            /* each later step from the CPU's previous outputs, to test it alone */
            tsr_ce_sumexp_target(se, tl, logits, mx, targets, n, v, start);
            CU_ASSERT_EQUAL(cudaMemcpy(d_mx, mx, (size_t)n * 4, cudaMemcpyHostToDevice),
                            cudaSuccess);
            CU_ASSERT_EQUAL(tsr_cuda_ce_sumexp_target(d_se, d_tl, d_lg, d_mx, d_tg, n, v, start,
                                                      stream),
                            TSR_OK);
            floats_to_host(g, d_se, n);
            /* a sum of positive terms, each expf within a few ulp: relative */
            expect_close("ce sumexp", n, v, g, se, n, 1e-5, 0.0);
            floats_to_host(g, d_tl, n);
            expect_bits("ce target_logit", n, v, g, tl, (size_t)n * 4);
            tsr_ce_loss(loss, se, mx, tl, n);
            float *d_cse = dev_floats(se, n), *d_ctl = dev_floats(tl, n);
            CU_ASSERT_EQUAL(tsr_cuda_ce_loss(d_loss, d_cse, d_mx, d_ctl, n, stream), TSR_OK);
            floats_to_host(g, d_loss, n);
            /* log(sumexp) + max - target: O(1) terms that can cancel: floor 1 */
            expect_close("ce loss", n, v, g, loss, n, 1e-5, 1.0);
            tsr_ce_logits_to_grad(grad, mx, se, targets, dloss, n, v, start);
            CU_ASSERT_EQUAL(tsr_cuda_ce_logits_to_grad(d_lg, d_mx, d_cse, d_tg, d_dl, n, v, start,
                                                       stream),
                            TSR_OK);
            floats_to_host(g, d_lg, nv);
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
            void *bufs[] = {d_tg, d_lg, d_dl, d_mx, d_se, d_tl, d_loss, d_cse, d_ctl};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                cudaFree(bufs[i]);
            free(targets);
            float *hosts[] = {logits, dloss, mx, se, tl, loss, g, grad};
            for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
                free(hosts[i]);
        }
    }
}

static void test_add_accumulate_scale(void)
{
    const int64_t sizes[] = {1, 33, 1000003};
    for (int s = 0; s < NSHAPES(sizes); s++) {
        int64_t n = sizes[s];
        float *a = kc_alloc(n), *b = kc_alloc(n), *out = kc_alloc(n), *g = kc_alloc(n);
        kc_fill_normal(a, n, 71, 0.0f, 1.0f);
        kc_fill_normal(b, n, 72, 0.0f, 1.0f);
        float *d_a = dev_floats(a, n), *d_b = dev_floats(b, n), *d_out = dev_floats(a, n);
        tsr_add_forward(out, a, b, n);
        CU_ASSERT_EQUAL(tsr_cuda_add_forward(d_out, d_a, d_b, n, stream), TSR_OK);
        floats_to_host(g, d_out, n);
        expect_bits("add", n, 1, g, out, (size_t)n * 4);
        CU_ASSERT_EQUAL(tsr_cuda_add_forward(d_a, d_a, d_b, n, stream), TSR_OK); /* out = a */
        floats_to_host(g, d_a, n);
        expect_bits("add in place", n, 1, g, out, (size_t)n * 4);
        tsr_accumulate(out, b, n); /* out = a + b + b */
        CU_ASSERT_EQUAL(tsr_cuda_accumulate(d_a, d_b, n, stream), TSR_OK);
        floats_to_host(g, d_a, n);
        expect_bits("accumulate", n, 1, g, out, (size_t)n * 4);
        tsr_scale(out, -0.3f, n);
        CU_ASSERT_EQUAL(tsr_cuda_scale(d_a, -0.3f, n, stream), TSR_OK);
        floats_to_host(g, d_a, n);
        expect_bits("scale", n, 1, g, out, (size_t)n * 4);
        cudaFree(d_a);
        cudaFree(d_b);
        cudaFree(d_out);
        free(a);
        free(b);
        free(out);
        free(g);
    }
    expect_refused(tsr_cuda_accumulate(NULL, NULL, 5, stream), TSR_ERR_INVALID_ARG,
                   "tsr_cuda_accumulate");
}

static void test_sum_squares(void)
{
    const int64_t sizes[] = {1, 33, 1000, 1000003, 5000001};
    for (int s = 0; s < NSHAPES(sizes); s++) {
        int64_t n = sizes[s];
        float *x = kc_alloc(n);
        kc_fill_normal(x, n, 81, 0.0f, 1.0f);
        tsr_cuda_sumsq_plan plan;
        CU_ASSERT_EQUAL_FATAL(tsr_cuda_sumsq_plan_make(n, "test", &plan), TSR_OK);
        float *d_x = dev_floats(x, n);
        void *ws = dev_from(NULL, (size_t)plan.workspace_bytes);
        double *d_out = dev_from(NULL, 2 * sizeof(double)), got[2];
        CU_ASSERT_EQUAL(tsr_cuda_sum_squares(d_out, d_x, n, ws, (size_t)plan.workspace_bytes,
                                             stream),
                        TSR_OK);
        CU_ASSERT_EQUAL(tsr_cuda_sum_squares(d_out + 1, d_x, n, ws, (size_t)plan.workspace_bytes,
                                             stream),
                        TSR_OK);
        to_host(got, d_out, sizeof got);
        double want = tsr_sum_squares(x, n);
        /* double sums of positive terms in different orders: the CPU's longest
         * sequential chain (a lane of one of 64 chunks) bounds the relative
         * error by about 1e-12 at 5e6 elements */
        CU_ASSERT_TRUE(fabs(got[0] - want) <= 1e-11 * want);
        CU_ASSERT_TRUE(memcmp(&got[0], &got[1], sizeof(double)) == 0); /* run to run */
        expect_refused(tsr_cuda_sum_squares(d_out, d_x, n, ws,
                                            (size_t)plan.workspace_bytes - 1, stream),
                       TSR_ERR_INVALID_ARG, "tsr_cuda_sum_squares");
        cudaFree(d_x);
        cudaFree(ws);
        cudaFree(d_out);
        free(x);
    }
    double marker = 123.0, got = -1.0;
    double *d_out = dev_from(&marker, sizeof marker);
    CU_ASSERT_EQUAL(tsr_cuda_sum_squares(d_out, NULL, 0, NULL, 0, stream), TSR_OK);
    to_host(&got, d_out, sizeof got);
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
    const int64_t sizes[] = {1, 33, 1000, 1000003};
    for (int s = 0; s < NSHAPES(sizes); s++) {
        int64_t n = sizes[s];
        float *p = kc_alloc(n), *gr = kc_alloc(n), *m = kc_alloc(n), *v = kc_alloc(n);
        kc_fill_normal(p, n, 91, 0.0f, 1.0f);
        kc_fill_normal(gr, n, 92, 0.0f, 1.0f);
        kc_fill_normal(m, n, 93, 0.0f, 0.1f);
        kc_fill_uniform(v, n, 94, 0.0f, 0.01f);
        float *rp = copy_of(p, n), *rm = copy_of(m, n), *rv = copy_of(v, n);
        float *cp = copy_of(p, n), *cm = copy_of(m, n), *cv = copy_of(v, n);
        float *d_p = dev_floats(p, n), *d_g = dev_floats(gr, n), *d_m = dev_floats(m, n);
        float *d_v = dev_floats(v, n), *g = kc_alloc(n);
        for (int64_t step = 1; step <= 10; step += 9) { /* steps 1 and 10 */
            tsr_cuda_adamw_factors f;
            tsr_cuda_adamw_factors_make(&f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            adamw_rounded(rp, gr, rm, rv, n, &f);
            tsr_adamw_update(cp, gr, cm, cv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            CU_ASSERT_EQUAL(tsr_cuda_adamw_update(d_p, d_g, d_m, d_v, n, 1e-3f, 0.9f, 0.95f,
                                                  1e-8f, 0.1f, step, 0.5f, stream),
                            TSR_OK);
            floats_to_host(g, d_p, n);
            expect_bits("adamw param (rounded reference)", n, step, g, rp, (size_t)n * 4);
            /* against the CPU kernel, which may fuse: param ~ 1 moves by ~1e-3 */
            expect_close("adamw param", n, step, g, cp, n, 1e-5, 1e-3);
            floats_to_host(g, d_m, n);
            expect_bits("adamw m (rounded reference)", n, step, g, rm, (size_t)n * 4);
            /* b1 m + (1 - b1) g can cancel: its terms are ~0.1, and at step
             * 10 each side continues from its own step-1 state: floor 1e-2 */
            expect_close("adamw m", n, step, g, cm, n, 1e-5, 1e-2);
            floats_to_host(g, d_v, n);
            expect_bits("adamw v (rounded reference)", n, step, g, rv, (size_t)n * 4);
            expect_close("adamw v", n, step, g, cv, n, 1e-5, 0.0); /* positive terms */
        }
        cudaFree(d_p);
        cudaFree(d_g);
        cudaFree(d_m);
        cudaFree(d_v);
        float *hosts[] = {p, gr, m, v, rp, rm, rv, cp, cm, cv, g};
        for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
            free(hosts[i]);
    }
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
    float *d_src = dev_floats(src, n), *d_f = dev_floats(src, n);
    uint16_t *d_h = dev_from(NULL, (size_t)n * 2);
    CU_ASSERT_EQUAL(tsr_cuda_bf16_from_floats(d_h, d_src, n, stream), TSR_OK);
    to_host(g_h, d_h, (size_t)n * 2);
    expect_bits("bf16 from floats", n, 1, g_h, h, (size_t)n * 2);
    tsr_bf16_round_floats(back, src, n);
    CU_ASSERT_EQUAL(tsr_cuda_bf16_round_floats(d_f, d_src, n, stream), TSR_OK);
    floats_to_host(g_back, d_f, n);
    expect_bits("bf16 round floats", n, 1, g_back, back, (size_t)n * 4);
    CU_ASSERT_EQUAL(tsr_cuda_bf16_round_floats(d_src, d_src, n, stream), TSR_OK); /* in place */
    floats_to_host(g_back, d_src, n);
    expect_bits("bf16 round floats in place", n, 1, g_back, back, (size_t)n * 4);
    /* every bf16 back to fp32 */
    for (int64_t i = 0; i < 65536; i++) {
        h[i] = (uint16_t)i;
        back[i] = tsr_float_of_bf16((uint16_t)i);
    }
    CU_ASSERT_EQUAL(cudaMemcpy(d_h, h, 65536 * 2, cudaMemcpyHostToDevice), cudaSuccess);
    CU_ASSERT_EQUAL(tsr_cuda_floats_from_bf16(d_f, d_h, 65536, stream), TSR_OK);
    floats_to_host(g_back, d_f, 65536);
    expect_bits("floats from bf16", 65536, 1, g_back, back, 65536 * 4);
    CU_ASSERT_EQUAL(bits_of(g_back[0x7fc0]), 0x7fc00000u);
    cudaFree(d_src);
    cudaFree(d_f);
    cudaFree(d_h);
    free(src);
    free(back);
    free(g_back);
    free(h);
    free(g_h);
}

/* after everything: no fault surfaced asynchronously */
static void test_device_clean(void)
{
    CU_ASSERT_EQUAL(cudaDeviceSynchronize(), cudaSuccess);
    CU_ASSERT_EQUAL(cudaGetLastError(), cudaSuccess);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_layernorm),     TSR_TEST(test_rmsnorm),
    TSR_TEST(test_gelu),          TSR_TEST(test_swiglu),
    TSR_TEST(test_rope),          TSR_TEST(test_embedding),
    TSR_TEST(test_cross_entropy), TSR_TEST(test_add_accumulate_scale),
    TSR_TEST(test_sum_squares),   TSR_TEST(test_adamw),
    TSR_TEST(test_bf16),          TSR_TEST(test_device_clean),
};

int main(void)
{
    int gpus = 0;
    if (tsr_cuda_device_count(&gpus) != TSR_OK) {
        fprintf(stderr, "cannot count CUDA devices: %s\n", tsr_last_error());
        return 1;
    }
    if (gpus == 0) {
        printf("skipped: no CUDA device visible (cudaGetDeviceCount reports none)\n");
        return 77;
    }
    if (cudaStreamCreate(&stream) != cudaSuccess) {
        fprintf(stderr, "cannot create a CUDA stream\n");
        return 1;
    }
    const tsr_test_suite suites[] = {TSR_SUITE("kernels_cuda", cases)};
    int rc = tsr_test_main(suites, 1);
    cudaStreamDestroy(stream);
    return rc;
}
