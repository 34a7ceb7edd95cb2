/*
 * test_kernels_cuda_attention.c - the CUDA flash attention and the cuBLASLt
 * linear products (kernels/cuda/attention_cuda.h, linear_cuda.h) against
 * the CPU kernels, on the GPU. Exits 77 (skipped) where none is visible.
 *
 * Attention, causal, B 2, T 1, 77, 200, 257 (one and several tiles, none
 * a multiple of 64 but 1), D 64 and 128, Hq 4 over Hkv 2 and Hq = Hkv = 2:
 *   - out and lse within 1e-5 relative L2 of tsr_attention_forward;
 *   - dq, dk, dv within 5e-5 relative L2 of tsr_attention_backward (the
 *     norm taken as at least an RMS of 1e-2: at T = 1 dq and dk are zero
 *     but for rounding), from zero and accumulated into pre-filled
 *     buffers (the CPU's likewise);
 *     the accumulated result bitwise the pre-filled value plus the result
 *     from zero;
 *   - on one shape: forward and backward bitwise equal run to run; dq
 *     asked alone, and dk, dv without dq, bitwise what the full call
 *     gives; a mask or a dropout refused, a dropout of p 0 accepted.
 * Linear, n 1 and 77, in 33 and 768, out 1 and 1000 (all 8 shapes, one
 * context per precision made at the start):
 *   - fp32 within 1e-5 relative L2 of tsr_linear_forward/backward (TF32
 *     would miss that by two orders), bf16 within 2e-2 of the same fp32
 *     results, dbias (fp32 in both) within 1e-5;
 *   - out overwritten (pre-filled with 12345), gradients accumulated into
 *     pre-filled values as large as the increments, with and without bias,
 *     in one call or in two with NULL outputs; forward bitwise equal run
 *     to run; a shape not listed at creation and a misaligned pointer
 *     refused.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_device.h"
#include "harness.h"
#include "kernel_check.h"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/linear_cuda.h"
#include "tessera/kernels.h"

#define ATTN_OUT_TOL 1e-5
#define ATTN_GRAD_TOL 5e-5
#define ATTN_GRAD_FLOOR 1e-2 /* RMS; see check_close */
#define LINEAR_FP32_TOL 1e-5
#define LINEAR_BF16_TOL 2e-2

static double worst[2]; /* largest relative L2 seen: attention, linear */

static void *dev_copy(const void *host, size_t bytes)
{
    void *d = NULL;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&d, bytes > 0 ? bytes : 1), cudaSuccess);
    if (host != NULL)
        CU_ASSERT_EQUAL(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    return d;
}

static void to_host(void *host, const void *dev, size_t bytes)
{
    CU_ASSERT_EQUAL(cudaDeviceSynchronize(), cudaSuccess);
    CU_ASSERT_EQUAL(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}

static size_t fbytes(int64_t n)
{
    return (size_t)n * sizeof(float);
}

/* ||got - ref|| <= tol * max(||ref||, floor_rms * sqrt(n)) (L2), and got
 * finite everywhere. The floor serves gradients that vanish in exact
 * arithmetic: with T = 1 each query sees one key, P = 1 and
 * dS = dP - Di = 0, so dq and dk are rounding noise on both sides. */
static void check_close(const char *what, const float *got, const float *ref, int64_t n,
                        double tol, double floor_rms, int kind)
{
    int64_t nonfinite = 0;
    double diff = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        nonfinite += !isfinite(got[i]);
        diff += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        norm += (double)ref[i] * ref[i];
    }
    double floor2 = floor_rms * floor_rms * (double)n;
    double den = norm > floor2 ? norm : floor2;
    double err = sqrt(diff / (den > 0.0 ? den : 1.0));
    if (err > worst[kind])
        worst[kind] = err;
    if (err > tol || nonfinite > 0)
        printf("\n  %s: relative L2 %.3g (tolerance %.0e), %lld non-finite", what, err, tol,
               (long long)nonfinite);
    CU_ASSERT_TRUE(err <= tol && nonfinite == 0);
}

/* a[i] == base[i] + inc[i] in fp32, bitwise, for every i */
static int64_t count_not_sum(const float *a, const float *base, const float *inc, int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float s = base[i] + inc[i];
        bad += memcmp(&s, &a[i], sizeof s) != 0;
    }
    return bad;
}

/* ---- attention ------------------------------------------------------------- */

typedef struct attn_gpu {
    tsr_cuda_attention_plan plan;
    float *q, *k, *v, *dout, *out, *lse, *dq, *dk, *dv;
    void *ws;
    int64_t nq, nk, nl;
} attn_gpu;

/* dq, dk, dv (device) := init (host; NULL: zero), then the backward adds
 * into them; results to host (any NULL: that gradient not asked). */
static void gpu_backward(attn_gpu *g, const float *iq, const float *ik, const float *iv,
                         float *hq, float *hk, float *hv)
{
    const float *init[3] = {iq, ik, iv};
    float *dev[3] = {g->dq, g->dk, g->dv}, *host[3] = {hq, hk, hv};
    int64_t n[3] = {g->nq, g->nk, g->nk};
    for (int i = 0; i < 3; i++) {
        cudaError_t err = init[i] != NULL ? cudaMemcpy(dev[i], init[i], fbytes(n[i]),
                                                       cudaMemcpyHostToDevice)
                                          : cudaMemset(dev[i], 0, fbytes(n[i]));
        CU_ASSERT_EQUAL(err, cudaSuccess);
    }
    CU_ASSERT_EQUAL(tsr_cuda_attention_backward(&g->plan, hq ? g->dq : NULL, hk ? g->dk : NULL,
                                                hv ? g->dv : NULL, g->dout, g->q, g->k, g->v,
                                                g->out, g->lse, NULL, NULL, g->ws, NULL),
                    TSR_OK);
    for (int i = 0; i < 3; i++)
        if (host[i] != NULL)
            to_host(host[i], dev[i], fbytes(n[i]));
}

/* Bitwise repeatability, gradients asked alone, refusals. */
static void attention_extras(attn_gpu *g, const float *out, const float *lse, const float *dq0,
                             const float *dk0, const float *dv0)
{
    float *a = kc_alloc(g->nq), *b = kc_alloc(g->nk), *c = kc_alloc(g->nk);
    float *l = kc_alloc(g->nl);
    CU_ASSERT_EQUAL(tsr_cuda_attention_forward(&g->plan, g->out, g->lse, g->q, g->k, g->v, NULL,
                                               NULL, NULL),
                    TSR_OK);
    to_host(a, g->out, fbytes(g->nq));
    to_host(l, g->lse, fbytes(g->nl));
    CU_ASSERT_EQUAL(memcmp(a, out, fbytes(g->nq)), 0);
    CU_ASSERT_EQUAL(memcmp(l, lse, fbytes(g->nl)), 0);
    gpu_backward(g, NULL, NULL, NULL, a, b, c);
    CU_ASSERT_EQUAL(memcmp(a, dq0, fbytes(g->nq)), 0);
    CU_ASSERT_EQUAL(memcmp(b, dk0, fbytes(g->nk)), 0);
    CU_ASSERT_EQUAL(memcmp(c, dv0, fbytes(g->nk)), 0);
    memset(a, 0, fbytes(g->nq));
    gpu_backward(g, NULL, NULL, NULL, a, NULL, NULL);
    CU_ASSERT_EQUAL(memcmp(a, dq0, fbytes(g->nq)), 0);
    memset(b, 0, fbytes(g->nk));
    memset(c, 0, fbytes(g->nk));
    gpu_backward(g, NULL, NULL, NULL, NULL, b, c);
    CU_ASSERT_EQUAL(memcmp(b, dk0, fbytes(g->nk)), 0);
    CU_ASSERT_EQUAL(memcmp(c, dv0, fbytes(g->nk)), 0);

    tsr_attn_mask causal = {TSR_ATTN_CAUSAL, 0, 0, 0, NULL, NULL, NULL};
    tsr_dropout off = {0}, on = {0};
    on.p = 0.1f;
    CU_ASSERT_EQUAL(tsr_cuda_attention_forward(&g->plan, g->out, g->lse, g->q, g->k, g->v,
                                               &causal, NULL, NULL),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "mask NULL"));
    CU_ASSERT_EQUAL(tsr_cuda_attention_backward(&g->plan, g->dq, g->dk, g->dv, g->dout, g->q,
                                                g->k, g->v, g->out, g->lse, NULL, &on, g->ws,
                                                NULL),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "dropout"));
    CU_ASSERT_EQUAL(tsr_cuda_attention_forward(&g->plan, g->out, g->lse, g->q, g->k, g->v, NULL,
                                               &off, NULL),
                    TSR_OK);
    to_host(a, g->out, fbytes(g->nq));
    CU_ASSERT_EQUAL(memcmp(a, out, fbytes(g->nq)), 0);
    CU_ASSERT_EQUAL(tsr_cuda_attention_backward(&g->plan, g->dq, NULL, NULL, g->dout, g->q, g->k,
                                                g->v, g->out, g->lse, NULL, NULL, NULL, NULL),
                    TSR_ERR_INVALID_ARG); /* no workspace */
    free(a), free(b), free(c), free(l);
}

static void attention_case(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d, int extras)
{
    char what[96];
    attn_gpu g;
    g.nq = b * t * hq * d;
    g.nk = b * t * hkv * d;
    g.nl = b * hq * t;
    uint64_t seed = (uint64_t)(t * 1000 + d * 10 + hq);
    float *q = kc_alloc(g.nq), *k = kc_alloc(g.nk), *v = kc_alloc(g.nk), *dout = kc_alloc(g.nq);
    float *out = kc_alloc(g.nq), *lse = kc_alloc(g.nl), *gout = kc_alloc(g.nq);
    float *glse = kc_alloc(g.nl);
    kc_fill_normal(q, g.nq, seed, 0.0f, 1.0f);
    kc_fill_normal(k, g.nk, seed + 1, 0.0f, 1.0f);
    kc_fill_normal(v, g.nk, seed + 2, 0.0f, 1.0f);
    kc_fill_normal(dout, g.nq, seed + 3, 0.0f, 1.0f);
    float *scratch = kc_alloc((int64_t)tsr_attention_scratch_floats(t, d));
    tsr_attention_forward(out, lse, q, k, v, b, t, hq, hkv, d, NULL, NULL, scratch);
    /* gradients from zero (0) and into pre-filled values (1), CPU (c) and GPU (g) */
    float *cq0 = kc_alloc(g.nq), *ck0 = kc_alloc(g.nk), *cv0 = kc_alloc(g.nk);
    float *gq = kc_alloc(g.nq), *gk = kc_alloc(g.nk), *gv = kc_alloc(g.nk);
    kc_fill_uniform(gq, g.nq, seed + 4, -1.0f, 1.0f);
    kc_fill_uniform(gk, g.nk, seed + 5, -1.0f, 1.0f);
    kc_fill_uniform(gv, g.nk, seed + 6, -1.0f, 1.0f);
    float *cq1 = kc_alloc(g.nq), *ck1 = kc_alloc(g.nk), *cv1 = kc_alloc(g.nk);
    memcpy(cq1, gq, fbytes(g.nq));
    memcpy(ck1, gk, fbytes(g.nk));
    memcpy(cv1, gv, fbytes(g.nk));
    tsr_attention_backward(cq0, ck0, cv0, dout, q, k, v, out, lse, b, t, hq, hkv, d, NULL, NULL,
                           scratch);
    tsr_attention_backward(cq1, ck1, cv1, dout, q, k, v, out, lse, b, t, hq, hkv, d, NULL, NULL,
                           scratch);

    tsr_cuda_attention_limits lim;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_attention_limits_query(&lim), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_attention_plan_init(&g.plan, b, t, hq, hkv, d, &lim), TSR_OK);
    g.q = dev_copy(q, fbytes(g.nq));
    g.k = dev_copy(k, fbytes(g.nk));
    g.v = dev_copy(v, fbytes(g.nk));
    g.dout = dev_copy(dout, fbytes(g.nq));
    g.out = dev_copy(NULL, fbytes(g.nq));
    g.lse = dev_copy(NULL, fbytes(g.nl));
    g.dq = dev_copy(NULL, fbytes(g.nq));
    g.dk = dev_copy(NULL, fbytes(g.nk));
    g.dv = dev_copy(NULL, fbytes(g.nk));
    g.ws = dev_copy(NULL, (size_t)g.plan.workspace_bytes);
    CU_ASSERT_EQUAL(tsr_cuda_attention_forward(&g.plan, g.out, g.lse, g.q, g.k, g.v, NULL, NULL,
                                               NULL),
                    TSR_OK);
    to_host(gout, g.out, fbytes(g.nq));
    to_host(glse, g.lse, fbytes(g.nl));
    snprintf(what, sizeof what, "attention B %lld T %lld Hq %lld Hkv %lld D %lld", (long long)b,
             (long long)t, (long long)hq, (long long)hkv, (long long)d);
    char name[160];
    snprintf(name, sizeof name, "%s out", what);
    check_close(name, gout, out, g.nq, ATTN_OUT_TOL, 0.0, 0);
    snprintf(name, sizeof name, "%s lse", what);
    check_close(name, glse, lse, g.nl, ATTN_OUT_TOL, 0.0, 0);

    float *hq0 = kc_alloc(g.nq), *hk0 = kc_alloc(g.nk), *hv0 = kc_alloc(g.nk);
    float *hq1 = kc_alloc(g.nq), *hk1 = kc_alloc(g.nk), *hv1 = kc_alloc(g.nk);
    gpu_backward(&g, NULL, NULL, NULL, hq0, hk0, hv0);
    gpu_backward(&g, gq, gk, gv, hq1, hk1, hv1);
    const float *got[6] = {hq0, hk0, hv0, hq1, hk1, hv1};
    const float *ref[6] = {cq0, ck0, cv0, cq1, ck1, cv1};
    const char *label[6] = {"dq", "dk", "dv", "dq accumulated", "dk accumulated",
                            "dv accumulated"};
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "%s %s", what, label[i]);
        check_close(name, got[i], ref[i], i % 3 == 0 ? g.nq : g.nk, ATTN_GRAD_TOL,
                    ATTN_GRAD_FLOOR, 0);
    }
    CU_ASSERT_EQUAL(count_not_sum(hq1, gq, hq0, g.nq), 0);
    CU_ASSERT_EQUAL(count_not_sum(hk1, gk, hk0, g.nk), 0);
    CU_ASSERT_EQUAL(count_not_sum(hv1, gv, hv0, g.nk), 0);
    if (extras)
        attention_extras(&g, gout, glse, hq0, hk0, hv0);

    void *dev[] = {g.q, g.k, g.v, g.dout, g.out, g.lse, g.dq, g.dk, g.dv, g.ws};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        cudaFree(dev[i]);
    float *host[] = {q,   k,   v,   dout, out, lse, gout, glse, scratch, cq0, ck0, cv0,
                     gq,  gk,  gv,  cq1,  ck1, cv1, hq0,  hk0,  hv0,     hq1, hk1, hv1};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

static void test_attention_against_cpu(void)
{
    const int64_t ts[] = {1, 77, 200, 257}, ds[] = {64, 128}, heads[][2] = {{4, 2}, {2, 2}};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int h = 0; h < 2; h++)
                attention_case(2, ts[i], heads[h][0], heads[h][1], ds[j], 0);
    printf("\n  attention: largest relative L2 %.3g", worst[0]);
}

static void test_attention_repeatable_and_refusals(void)
{
    attention_case(2, 257, 4, 2, 128, 1);
    attention_case(2, 200, 4, 2, 64, 1);
}

/* ---- linear ---------------------------------------------------------------- */

static const tsr_cuda_linear_shape linear_shapes[] = {
    {1, 33, 1}, {1, 33, 1000}, {1, 768, 1}, {1, 768, 1000},
    {77, 33, 1}, {77, 33, 1000}, {77, 768, 1}, {77, 768, 1000}};
#define LINEAR_SHAPES ((int64_t)(sizeof linear_shapes / sizeof linear_shapes[0]))

static void linear_case(tsr_cuda_linear *ctx, int bf16, int64_t index)
{
    const tsr_cuda_linear_shape *s = &linear_shapes[index];
    int64_t n = s->n, ic = s->in_features, oc = s->out_features;
    double tol = bf16 ? LINEAR_BF16_TOL : LINEAR_FP32_TOL;
    uint64_t seed = (uint64_t)(index * 100 + bf16);
    float *inp = kc_alloc(n * ic), *w = kc_alloc(oc * ic), *bias = kc_alloc(oc);
    float *dout = kc_alloc(n * oc), *out_b = kc_alloc(n * oc), *out_nb = kc_alloc(n * oc);
    float *gi = kc_alloc(n * ic), *gw = kc_alloc(oc * ic), *gb = kc_alloc(oc);
    kc_fill_normal(inp, n * ic, seed, 0.0f, 1.0f);
    kc_fill_normal(w, oc * ic, seed + 1, 0.0f, 1.0f);
    kc_fill_normal(bias, oc, seed + 2, 0.0f, 1.0f);
    kc_fill_normal(dout, n * oc, seed + 3, 0.0f, 1.0f);
    /* pre-filled gradients as large as what is added to them */
    kc_fill_normal(gi, n * ic, seed + 4, 0.0f, sqrtf((float)oc));
    kc_fill_normal(gw, oc * ic, seed + 5, 0.0f, sqrtf((float)n));
    kc_fill_normal(gb, oc, seed + 6, 0.0f, sqrtf((float)n));
    tsr_linear_forward(out_b, inp, w, bias, n, ic, oc);
    tsr_linear_forward(out_nb, inp, w, NULL, n, ic, oc);
    float *ri = kc_alloc(n * ic), *rw = kc_alloc(oc * ic), *rb = kc_alloc(oc);
    memcpy(ri, gi, fbytes(n * ic));
    memcpy(rw, gw, fbytes(oc * ic));
    memcpy(rb, gb, fbytes(oc));
    tsr_linear_backward(ri, rw, rb, dout, inp, w, n, ic, oc);

    void *dw;
    if (bf16) {
        uint16_t *w16 = calloc((size_t)(oc * ic), sizeof *w16);
        tsr_bf16_from_floats(w16, w, oc * ic);
        dw = dev_copy(w16, (size_t)(oc * ic) * sizeof *w16);
        free(w16);
    } else {
        dw = dev_copy(w, fbytes(oc * ic));
    }
    float *d_inp = dev_copy(inp, fbytes(n * ic)), *d_bias = dev_copy(bias, fbytes(oc));
    float *d_dout = dev_copy(dout, fbytes(n * oc)), *d_out = dev_copy(NULL, fbytes(n * oc));
    float *d_gi = dev_copy(gi, fbytes(n * ic)), *d_gw = dev_copy(gw, fbytes(oc * ic));
    float *d_gb = dev_copy(gb, fbytes(oc));
    int64_t largest = n * ic > oc * ic ? n * ic : oc * ic;
    float *got = kc_alloc(largest > n * oc ? largest : n * oc);
    float *again = kc_alloc(n * oc);
    char name[128];
    const char *prec = bf16 ? "bf16" : "fp32";
    for (int with_bias = 1; with_bias >= 0; with_bias--) {
        for (int64_t i = 0; i < n * oc; i++)
            got[i] = 12345.0f;
        CU_ASSERT_EQUAL(cudaMemcpy(d_out, got, fbytes(n * oc), cudaMemcpyHostToDevice),
                        cudaSuccess);
        CU_ASSERT_EQUAL(tsr_cuda_linear_forward(ctx, d_out, d_inp, dw, with_bias ? d_bias : NULL,
                                                n, ic, oc, NULL),
                        TSR_OK);
        to_host(got, d_out, fbytes(n * oc));
        snprintf(name, sizeof name, "linear %s n %lld in %lld out %lld forward%s", prec,
                 (long long)n, (long long)ic, (long long)oc, with_bias ? " with bias" : "");
        check_close(name, got, with_bias ? out_b : out_nb, n * oc, tol, 0.0, 1);
        CU_ASSERT_EQUAL(tsr_cuda_linear_forward(ctx, d_out, d_inp, dw, with_bias ? d_bias : NULL,
                                                n, ic, oc, NULL),
                        TSR_OK);
        to_host(again, d_out, fbytes(n * oc));
        CU_ASSERT_EQUAL(memcmp(again, got, fbytes(n * oc)), 0);
    }
    if (index % 2 == 0) {
        CU_ASSERT_EQUAL(tsr_cuda_linear_backward(ctx, d_gi, d_gw, d_gb, d_dout, d_inp, dw, n, ic,
                                                 oc, NULL),
                        TSR_OK);
    } else { /* the products, then the bias gradient alone */
        CU_ASSERT_EQUAL(tsr_cuda_linear_backward(ctx, d_gi, d_gw, NULL, d_dout, d_inp, dw, n, ic,
                                                 oc, NULL),
                        TSR_OK);
        CU_ASSERT_EQUAL(tsr_cuda_linear_backward(ctx, NULL, NULL, d_gb, d_dout, NULL, NULL, n, ic,
                                                 oc, NULL),
                        TSR_OK);
    }
    const float *dev[3] = {d_gi, d_gw, d_gb}, *ref[3] = {ri, rw, rb};
    const int64_t count[3] = {n * ic, oc * ic, oc};
    const char *label[3] = {"dinp", "dweight", "dbias"};
    for (int i = 0; i < 3; i++) {
        to_host(got, dev[i], fbytes(count[i]));
        snprintf(name, sizeof name, "linear %s n %lld in %lld out %lld %s accumulated", prec,
                 (long long)n, (long long)ic, (long long)oc, label[i]);
        check_close(name, got, ref[i], count[i], i == 2 ? LINEAR_FP32_TOL : tol, 0.0, 1);
    }
    if (index == LINEAR_SHAPES - 1) {
        CU_ASSERT_EQUAL(tsr_cuda_linear_forward(ctx, d_out, d_inp, dw, NULL, n, ic + 1, oc, NULL),
                        TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "was not given"));
        CU_ASSERT_EQUAL(tsr_cuda_linear_forward(ctx, d_out + 1, d_inp, dw, NULL, n, ic, oc, NULL),
                        TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "aligned"));
    }
    void *devs[] = {dw, d_inp, d_bias, d_dout, d_out, d_gi, d_gw, d_gb};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
        cudaFree(devs[i]);
    float *host[] = {inp, w, bias, dout, out_b, out_nb, gi, gw, gb, ri, rw, rb, got, again};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

static void linear_precision(tsr_cuda_linear_precision precision)
{
    CU_ASSERT_STRING_EQUAL(tsr_linear_precision(), "fp32"); /* the CPU reference */
    tsr_cuda_linear *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_linear_create(&ctx, precision, linear_shapes, LINEAR_SHAPES),
                          TSR_OK);
    CU_ASSERT_TRUE(tsr_cuda_linear_device_bytes(ctx) >= tsr_cuda_linear_workspace_bytes(8));
    for (int64_t i = 0; i < LINEAR_SHAPES; i++)
        linear_case(ctx, precision == TSR_CUDA_LINEAR_BF16, i);
    tsr_cuda_linear_destroy(ctx);
}

static void test_linear_fp32(void)
{
    worst[1] = 0.0;
    linear_precision(TSR_CUDA_LINEAR_FP32);
    printf("\n  linear fp32: largest relative L2 %.3g", worst[1]);
}

static void test_linear_bf16(void)
{
    worst[1] = 0.0;
    linear_precision(TSR_CUDA_LINEAR_BF16);
    printf("\n  linear bf16: largest relative L2 %.3g", worst[1]);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_attention_against_cpu),
    TSR_TEST(test_attention_repeatable_and_refusals),
    TSR_TEST(test_linear_fp32),
    TSR_TEST(test_linear_bf16),
};

int main(void)
{
    int gpus = 0;
    if (tsr_cuda_device_count(&gpus) != TSR_OK) {
        fprintf(stderr, "cannot count the GPUs: %s\n", tsr_last_error());
        return 1;
    }
    if (gpus == 0) {
        printf("skipped: no GPU visible (cudaGetDeviceCount reports 0 devices)\n");
        return 77;
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        printf("GPU 0: %s (compute capability %d.%d)\n", prop.name, prop.major, prop.minor);
    const tsr_test_suite suites[] = {TSR_SUITE("cuda_attention_linear", cases)};
    return tsr_test_main(suites, 1);
}
