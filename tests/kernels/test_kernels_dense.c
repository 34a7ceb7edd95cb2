/*
 * test_kernels_dense.c - the per-token kernels: linear, LayerNorm, RMSNorm,
 * GELU, SwiGLU, embeddings, RoPE, QKV split, elementwise, AdamW.
 *
 * Each kernel: forward against a naive double-precision reference written
 * here, backward by finite differences (kernel_check.h, rel L2 <= 1e-2),
 * accumulate semantics (two backward calls give twice the gradient) and
 * NULL gradient outputs. Also the vectorised exp the kernels share.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "harness.h"
#include "kernel_check.h"
#include "kernels/cpu/simd.h"
#include "tessera/kernels.h"

/* ---- the shared exp (simd.h) -------------------------------------------------- */

static void test_shared_exp_accuracy_and_special_values(void)
{
    double worst = 0.0;
    for (int64_t i = 0; i <= 1000000; i += TSR_VL) {
        tsr_vf x;
        for (int l = 0; l < TSR_VL; l++)
            x[l] = -86.0f + (float)(174.7 * (double)(i + l) / 1000000.0);
        tsr_vf y = tsr_expf_v(x);
        for (int l = 0; l < TSR_VL; l++) {
            double r = exp((double)x[l]);
            double e = fabs((double)y[l] - r) / r, es = fabs((double)tsr_expf(x[l]) - r) / r;
            worst = e > worst ? e : worst;
            worst = es > worst ? es : worst;
        }
    }
    CU_ASSERT_TRUE(worst <= 2.0 * 1.1920929e-7); /* 2 ulp */
    const float special[8] = {-INFINITY, INFINITY, NAN, 0.0f, -88.0f, 89.0f, -1e30f, 1.0f};
    float got[8];
    for (int c = 0; c < 8; c += TSR_VL) { /* in vectors of whatever width the build has */
        tsr_vf s = {0};
        for (int l = 0; l < TSR_VL && c + l < 8; l++)
            s[l] = special[c + l];
        tsr_vf y = tsr_expf_v(s);
        for (int l = 0; l < TSR_VL && c + l < 8; l++)
            got[c + l] = y[l];
    }
    CU_ASSERT_EQUAL(got[0], 0.0f);
    CU_ASSERT_TRUE(isinf(got[1]) && got[1] > 0);
    CU_ASSERT_TRUE(isnan(got[2]));
    CU_ASSERT_EQUAL(got[3], 1.0f);
    CU_ASSERT_EQUAL(got[4], 0.0f);
    CU_ASSERT_TRUE(isinf(got[5]));
    CU_ASSERT_EQUAL(got[6], 0.0f);
    for (int l = 0; l < 8; l++)
        CU_ASSERT_TRUE(tsr_expf(special[l]) == got[l] ||
                       (isnan(got[l]) && isnan(tsr_expf(special[l]))));
}

/* ---- linear ------------------------------------------------------------ */

typedef struct linear_ctx {
    const float *inp, *w, *b;
    int64_t n, ic, oc;
} linear_ctx;

static void linear_fwd(void *p, float *out)
{
    linear_ctx *c = p;
    tsr_linear_forward(out, c->inp, c->w, c->b, c->n, c->ic, c->oc);
}

static void test_linear_forward_matches_naive(void)
{
    int64_t n = 9, ic = 13, oc = 11;
    float *inp = kc_alloc(n * ic), *w = kc_alloc(oc * ic), *b = kc_alloc(oc);
    float *out = kc_alloc(n * oc), *out_nb = kc_alloc(n * oc);
    double *ref = calloc((size_t)(n * oc), sizeof(double));
    double *ref_nb = calloc((size_t)(n * oc), sizeof(double));
    kc_fill_normal(inp, n * ic, 1, 0, 1);
    kc_fill_normal(w, oc * ic, 2, 0, 1);
    kc_fill_normal(b, oc, 3, 0, 1);
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < oc; o++) {
            double s = 0;
            for (int64_t k = 0; k < ic; k++)
                s += (double)inp[i * ic + k] * w[o * ic + k];
            ref_nb[i * oc + o] = s;
            ref[i * oc + o] = s + b[o];
        }
    tsr_linear_forward(out, inp, w, b, n, ic, oc);
    tsr_linear_forward(out_nb, inp, w, NULL, n, ic, oc);
    CU_ASSERT_TRUE(kc_max_rel_diff(out, ref, n * oc, 1e-3) < 1e-5);
    CU_ASSERT_TRUE(kc_max_rel_diff(out_nb, ref_nb, n * oc, 1e-3) < 1e-5);
    free(inp), free(w), free(b), free(out), free(out_nb), free(ref), free(ref_nb);
}

static void test_linear_backward_finite_differences(void)
{
    int64_t n = 6, ic = 7, oc = 5;
    float *inp = kc_alloc(n * ic), *w = kc_alloc(oc * ic), *b = kc_alloc(oc);
    float *dout = kc_alloc(n * oc), *dinp = kc_alloc(n * ic), *dw = kc_alloc(oc * ic);
    float *db = kc_alloc(oc);
    kc_fill_normal(inp, n * ic, 4, 0, 1);
    kc_fill_normal(w, oc * ic, 5, 0, 1);
    kc_fill_normal(b, oc, 6, 0, 1);
    kc_fill_normal(dout, n * oc, 7, 0, 1);
    tsr_linear_backward(dinp, dw, db, dout, inp, w, n, ic, oc);
    linear_ctx c = {inp, w, b, n, ic, oc};
    CU_ASSERT_TRUE(kc_grad_check(&c, linear_fwd, inp, n * ic, dinp, dout, n * oc, 1000, 1e-2f,
                                 "linear dinp") < KC_FD_TOL);
    CU_ASSERT_TRUE(kc_grad_check(&c, linear_fwd, w, oc * ic, dw, dout, n * oc, 1000, 1e-2f,
                                 "linear dweight") < KC_FD_TOL);
    CU_ASSERT_TRUE(kc_grad_check(&c, linear_fwd, b, oc, db, dout, n * oc, 1000, 1e-2f,
                                 "linear dbias") < KC_FD_TOL);
    /* accumulate: a second call doubles every gradient */
    float *dinp1 = kc_alloc(n * ic), *dw1 = kc_alloc(oc * ic), *db1 = kc_alloc(oc);
    memcpy(dinp1, dinp, sizeof(float) * (size_t)(n * ic));
    memcpy(dw1, dw, sizeof(float) * (size_t)(oc * ic));
    memcpy(db1, db, sizeof(float) * (size_t)oc);
    tsr_linear_backward(dinp, dw, db, dout, inp, w, n, ic, oc);
    for (int64_t i = 0; i < n * ic; i++)
        TSR_ASSERT_REL(dinp[i], 2.0 * dinp1[i], 1e-5);
    for (int64_t i = 0; i < oc * ic; i++)
        TSR_ASSERT_REL(dw[i], 2.0 * dw1[i], 1e-5);
    for (int64_t i = 0; i < oc; i++)
        TSR_ASSERT_REL(db[i], 2.0 * db1[i], 1e-5);
    /* NULL outputs: the others are still computed */
    float *dw2 = kc_alloc(oc * ic);
    tsr_linear_backward(NULL, dw2, NULL, dout, inp, w, n, ic, oc);
    CU_ASSERT_EQUAL(memcmp(dw2, dw1, sizeof(float) * (size_t)(oc * ic)), 0);
    free(inp), free(w), free(b), free(dout), free(dinp), free(dw), free(db);
    free(dinp1), free(dw1), free(db1), free(dw2);
}

/* ---- LayerNorm / RMSNorm --------------------------------------------------- */

typedef struct norm_ctx {
    const float *inp, *w, *b;
    float *mean, *rstd;
    int64_t n, c;
    int rms;
} norm_ctx;

static void norm_fwd(void *p, float *out)
{
    norm_ctx *c = p;
    if (c->rms)
        tsr_rmsnorm_forward(out, c->rstd, c->inp, c->w, c->n, c->c, 1e-5f);
    else
        tsr_layernorm_forward(out, c->mean, c->rstd, c->inp, c->w, c->b, c->n, c->c, 1e-5f);
}

static void check_norm(int rms)
{
    int64_t n = 7, c = 70; /* 70: more than one 64-column block */
    float *inp = kc_alloc(n * c), *w = kc_alloc(c), *b = kc_alloc(c), *out = kc_alloc(n * c);
    float *mean = kc_alloc(n), *rstd = kc_alloc(n), *dout = kc_alloc(n * c);
    float *dinp = kc_alloc(n * c), *dw = kc_alloc(c), *db = kc_alloc(c);
    double *ref = calloc((size_t)(n * c), sizeof(double));
    kc_fill_normal(inp, n * c, 10 + rms, 0.5f, 2.0f);
    kc_fill_normal(w, c, 12, 1.0f, 0.3f);
    kc_fill_normal(b, c, 13, 0.0f, 0.3f);
    kc_fill_normal(dout, n * c, 14, 0, 1);
    for (int64_t i = 0; i < n; i++) {
        double mu = 0, var = 0, ms = 0;
        for (int64_t j = 0; j < c; j++)
            mu += inp[i * c + j], ms += (double)inp[i * c + j] * inp[i * c + j];
        mu /= (double)c, ms /= (double)c;
        for (int64_t j = 0; j < c; j++)
            var += (inp[i * c + j] - mu) * (inp[i * c + j] - mu);
        var /= (double)c;
        for (int64_t j = 0; j < c; j++)
            ref[i * c + j] = rms ? inp[i * c + j] / sqrt(ms + 1e-5) * w[j]
                                 : (inp[i * c + j] - mu) / sqrt(var + 1e-5) * w[j] + b[j];
    }
    norm_ctx ctx = {inp, w, b, mean, rstd, n, c, rms};
    norm_fwd(&ctx, out);
    CU_ASSERT_TRUE(kc_max_rel_diff(out, ref, n * c, 1e-2) < 1e-5);
    if (rms)
        tsr_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, n, c);
    else
        tsr_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, n, c);
    const char *name = rms ? "rmsnorm" : "layernorm";
    CU_ASSERT_TRUE(kc_grad_check(&ctx, norm_fwd, inp, n * c, dinp, dout, n * c, 1000, 1e-2f,
                                 name) < KC_FD_TOL);
    CU_ASSERT_TRUE(kc_grad_check(&ctx, norm_fwd, w, c, dw, dout, n * c, 1000, 1e-2f, name) <
                   KC_FD_TOL);
    if (!rms)
        CU_ASSERT_TRUE(kc_grad_check(&ctx, norm_fwd, b, c, db, dout, n * c, 1000, 1e-2f, name) <
                       KC_FD_TOL);
    /* forward after the checks restored the saved statistics */
    norm_fwd(&ctx, out);
    float *dinp1 = kc_alloc(n * c), *dw1 = kc_alloc(c);
    memcpy(dinp1, dinp, sizeof(float) * (size_t)(n * c));
    memcpy(dw1, dw, sizeof(float) * (size_t)c);
    if (rms)
        tsr_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, n, c);
    else
        tsr_layernorm_backward(dinp, dw, NULL, dout, inp, w, mean, rstd, n, c);
    for (int64_t i = 0; i < n * c; i++)
        TSR_ASSERT_REL(dinp[i], 2.0 * dinp1[i], 1e-5);
    for (int64_t j = 0; j < c; j++)
        TSR_ASSERT_REL(dw[j], 2.0 * dw1[j], 1e-5);
    if (rms)
        tsr_rmsnorm_backward(NULL, NULL, dout, inp, w, rstd, n, c);
    else
        tsr_layernorm_backward(NULL, NULL, NULL, dout, inp, w, mean, rstd, n, c);
    free(inp), free(w), free(b), free(out), free(mean), free(rstd), free(dout), free(dinp);
    free(dw), free(db), free(ref), free(dinp1), free(dw1);
}

static void test_layernorm(void)
{
    check_norm(0);
}

static void test_rmsnorm(void)
{
    check_norm(1);
}

/* ---- GELU / SwiGLU ---------------------------------------------------------- */

typedef struct act_ctx {
    const float *inp;
    int64_t n, f;
    int swiglu;
} act_ctx;

static void act_fwd(void *p, float *out)
{
    act_ctx *c = p;
    if (c->swiglu)
        tsr_swiglu_forward(out, c->inp, c->n, c->f);
    else
        tsr_gelu_forward(out, c->inp, c->n);
}

static void test_gelu_matches_torch_tanh_formula(void)
{
    int64_t n = 1000; /* not a multiple of 16: vector body and scalar tail */
    float *x = kc_alloc(n), *y = kc_alloc(n);
    double *ref = calloc((size_t)n, sizeof(double));
    kc_fill_uniform(x, n, 20, -9.0f, 9.0f);
    x[0] = 0.0f, x[1] = -30.0f, x[2] = 30.0f, x[3] = 1e-6f;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        ref[i] = 0.5 * v * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
    }
    tsr_gelu_forward(y, x, n);
    /* relative to max(|ref|, 1e-3): tiny outputs at large negative x are
     * themselves ill-conditioned in the tanh form */
    CU_ASSERT_TRUE(kc_max_rel_diff(y, ref, n, 1e-3) < 1e-5);
    CU_ASSERT_EQUAL(y[0], 0.0f);
    CU_ASSERT_EQUAL(y[2], 30.0f);
    CU_ASSERT_TRUE(fabsf(y[1]) < 1e-30f);
    free(x), free(y), free(ref);
}

static void check_activation_grad(int swiglu)
{
    int64_t n = swiglu ? 5 : 300, f = swiglu ? 21 : 0, nin = swiglu ? n * 2 * f : n;
    int64_t nout = swiglu ? n * f : n;
    float *x = kc_alloc(nin), *dout = kc_alloc(nout), *dx = kc_alloc(nin), *y = kc_alloc(nout);
    kc_fill_normal(x, nin, 30 + swiglu, 0, 2.0f);
    kc_fill_normal(dout, nout, 32, 0, 1);
    act_ctx c = {x, n, f, swiglu};
    if (swiglu) {
        tsr_swiglu_forward(y, x, n, f);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < f; j++) {
                double g = x[i * 2 * f + j], u = x[i * 2 * f + f + j];
                TSR_ASSERT_REL(y[i * f + j], g / (1 + exp(-g)) * u, 1e-5);
            }
        tsr_swiglu_backward(dx, dout, x, n, f);
    } else {
        tsr_gelu_backward(dx, dout, x, n);
    }
    CU_ASSERT_TRUE(kc_grad_check(&c, act_fwd, x, nin, dx, dout, nout, 1000, 1e-2f,
                                 swiglu ? "swiglu" : "gelu") < KC_FD_TOL);
    float *dx1 = kc_alloc(nin);
    memcpy(dx1, dx, sizeof(float) * (size_t)nin);
    if (swiglu)
        tsr_swiglu_backward(dx, dout, x, n, f);
    else
        tsr_gelu_backward(dx, dout, x, n);
    for (int64_t i = 0; i < nin; i++)
        TSR_ASSERT_REL(dx[i], 2.0 * dx1[i], 1e-6);
    tsr_gelu_backward(NULL, dout, x, n);
    free(x), free(dout), free(dx), free(y), free(dx1);
}

static void test_gelu_backward(void)
{
    check_activation_grad(0);
}

static void test_swiglu(void)
{
    check_activation_grad(1);
}

/* ---- embeddings --------------------------------------------------------------- */

typedef struct emb_ctx {
    const int32_t *tok;
    const float *table, *wpe;
    int64_t n, c, start, vlocal, b, t, t_offset;
} emb_ctx;

static void emb_fwd(void *p, float *out)
{
    emb_ctx *e = p;
    tsr_embedding_forward(out, e->tok, e->table, e->n, e->c, e->start, e->vlocal);
}

static void pos_fwd(void *p, float *out)
{
    emb_ctx *e = p;
    memset(out, 0, sizeof(float) * (size_t)(e->b * e->t * e->c));
    tsr_position_add_forward(out, e->wpe, e->b, e->t, e->c, e->t_offset);
}

static void test_embedding_and_vocab_slices(void)
{
    int64_t v = 10, c = 67, n = 12;
    int32_t tok[12] = {3, 9, 0, 3, 5, 5, 5, 7, 1, 9, 2, 3};
    float *table = kc_alloc(v * c), *out = kc_alloc(n * c), *dout = kc_alloc(n * c);
    float *dtable = kc_alloc(v * c);
    kc_fill_normal(table, v * c, 40, 0, 1);
    kc_fill_normal(dout, n * c, 41, 0, 1);
    tsr_embedding_forward(out, tok, table, n, c, 0, v);
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(memcmp(out + i * c, table + tok[i] * c, sizeof(float) * (size_t)c), 0);
    tsr_embedding_backward(dtable, dout, tok, n, c, 0, v);
    emb_ctx e = {tok, table, NULL, n, c, 0, v, 0, 0, 0};
    CU_ASSERT_TRUE(kc_grad_check(&e, emb_fwd, table, v * c, dtable, dout, n * c, 2000, 1e-2f,
                                 "embedding") < KC_FD_TOL);
    /* two slices [0, 4) and [4, 10): outputs sum to the full one, their
     * gradients are the two halves of the full gradient */
    float *oa = kc_alloc(n * c), *ob = kc_alloc(n * c);
    float *da = kc_alloc(4 * c), *dbb = kc_alloc(6 * c);
    tsr_embedding_forward(oa, tok, table, n, c, 0, 4);
    tsr_embedding_forward(ob, tok, table + 4 * c, n, c, 4, 6);
    for (int64_t i = 0; i < n * c; i++)
        CU_ASSERT_EQUAL(oa[i] + ob[i], out[i]);
    tsr_embedding_backward(da, dout, tok, n, c, 0, 4);
    tsr_embedding_backward(dbb, dout, tok, n, c, 4, 6);
    CU_ASSERT_EQUAL(memcmp(da, dtable, sizeof(float) * (size_t)(4 * c)), 0);
    CU_ASSERT_EQUAL(memcmp(dbb, dtable + 4 * c, sizeof(float) * (size_t)(6 * c)), 0);
    /* accumulate */
    float *d1 = kc_alloc(v * c);
    memcpy(d1, dtable, sizeof(float) * (size_t)(v * c));
    tsr_embedding_backward(dtable, dout, tok, n, c, 0, v);
    for (int64_t i = 0; i < v * c; i++)
        CU_ASSERT_TRUE(fabsf(dtable[i] - 2.0f * d1[i]) <= 1e-6f * (1.0f + fabsf(d1[i])));
    tsr_embedding_backward(NULL, dout, tok, n, c, 0, v);
    free(table), free(out), free(dout), free(dtable), free(oa), free(ob), free(da), free(dbb);
    free(d1);
}

static void test_position_embedding_with_offset(void)
{
    int64_t b = 3, t = 5, c = 20, maxpos = 16, off = 7;
    float *wpe = kc_alloc(maxpos * c), *x = kc_alloc(b * t * c), *y = kc_alloc(b * t * c);
    float *dout = kc_alloc(b * t * c), *dwpe = kc_alloc(maxpos * c);
    kc_fill_normal(wpe, maxpos * c, 50, 0, 1);
    kc_fill_normal(x, b * t * c, 51, 0, 1);
    kc_fill_normal(dout, b * t * c, 52, 0, 1);
    memcpy(y, x, sizeof(float) * (size_t)(b * t * c));
    tsr_position_add_forward(y, wpe, b, t, c, off);
    for (int64_t s = 0; s < b; s++)
        for (int64_t p = 0; p < t; p++)
            for (int64_t j = 0; j < c; j++)
                CU_ASSERT_EQUAL(y[(s * t + p) * c + j], x[(s * t + p) * c + j] + wpe[(off + p) * c + j]);
    tsr_position_add_backward(dwpe, dout, b, t, c, off);
    for (int64_t j = 0; j < off * c; j++)
        CU_ASSERT_EQUAL(dwpe[j], 0.0f);
    emb_ctx e = {NULL, NULL, wpe, 0, c, 0, 0, b, t, off};
    CU_ASSERT_TRUE(kc_grad_check(&e, pos_fwd, wpe, maxpos * c, dwpe, dout, b * t * c, 1000, 1e-2f,
                                 "position") < KC_FD_TOL);
    float *d1 = kc_alloc(maxpos * c);
    memcpy(d1, dwpe, sizeof(float) * (size_t)(maxpos * c));
    tsr_position_add_backward(dwpe, dout, b, t, c, off);
    for (int64_t j = 0; j < maxpos * c; j++)
        CU_ASSERT_TRUE(fabsf(dwpe[j] - 2.0f * d1[j]) <= 1e-6f * (1.0f + fabsf(d1[j])));
    tsr_position_add_backward(NULL, dout, b, t, c, off);
    free(d1);
    free(wpe), free(x), free(y), free(dout), free(dwpe);
}

/* ---- RoPE -------------------------------------------------------------------- */

typedef struct rope_ctx {
    const float *x;
    int64_t b, t, h, d, off;
} rope_ctx;

static void rope_fwd(void *p, float *out)
{
    rope_ctx *r = p;
    tsr_rope_forward(out, r->x, r->b, r->t, r->h, r->d, r->off, 10000.0f);
}

static void test_rope_matches_direct_formula(void)
{
    int64_t b = 2, t = 9, h = 3, d = 10, off = 5, n = b * t * h * d;
    float *x = kc_alloc(n), *y = kc_alloc(n), *dout = kc_alloc(n), *dx = kc_alloc(n);
    kc_fill_normal(x, n, 60, 0, 1);
    kc_fill_normal(dout, n, 61, 0, 1);
    tsr_rope_forward(y, x, b, t, h, d, off, 10000.0f);
    for (int64_t s = 0; s < b; s++)
        for (int64_t p = 0; p < t; p++)
            for (int64_t hh = 0; hh < h; hh++)
                for (int64_t i = 0; i < d / 2; i++) {
                    int64_t base = ((s * t + p) * h + hh) * d;
                    double ang = (double)(off + p) * pow(10000.0, -2.0 * (double)i / (double)d);
                    double x1 = x[base + i], x2 = x[base + i + d / 2];
                    double e1 = x1 * cos(ang) - x2 * sin(ang), e2 = x2 * cos(ang) + x1 * sin(ang);
                    CU_ASSERT_TRUE(fabs(y[base + i] - e1) < 1e-5);
                    CU_ASSERT_TRUE(fabs(y[base + i + d / 2] - e2) < 1e-5);
                }
    /* in place gives the same */
    float *z = kc_alloc(n);
    memcpy(z, x, sizeof(float) * (size_t)n);
    tsr_rope_forward(z, z, b, t, h, d, off, 10000.0f);
    CU_ASSERT_EQUAL(memcmp(z, y, sizeof(float) * (size_t)n), 0);
    tsr_rope_backward(dx, dout, b, t, h, d, off, 10000.0f);
    rope_ctx r = {x, b, t, h, d, off};
    CU_ASSERT_TRUE(kc_grad_check(&r, rope_fwd, x, n, dx, dout, n, 2000, 1e-2f, "rope") <
                   KC_FD_TOL);
    float *dx1 = kc_alloc(n);
    memcpy(dx1, dx, sizeof(float) * (size_t)n);
    tsr_rope_backward(dx, dout, b, t, h, d, off, 10000.0f);
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(dx[i], 2.0f * dx1[i]);
    /* a sequence slice with its offset equals the matching rows of the whole */
    tsr_rope_forward(z, x + 4 * h * d, 1, 5, h, d, off + 4, 10000.0f);
    CU_ASSERT_EQUAL(memcmp(z, y + 4 * h * d, sizeof(float) * (size_t)(5 * h * d)), 0);
    free(x), free(y), free(dout), free(dx), free(z), free(dx1);
}

/* ---- QKV split ------------------------------------------------------------------- */

typedef struct qkv_ctx {
    const float *qkv;
    int64_t n, g, r, d;
} qkv_ctx;

static void qkv_fwd(void *p, float *out)
{
    qkv_ctx *c = p;
    int64_t nq = c->n * c->g * c->r * c->d, nk = c->n * c->g * c->d;
    tsr_qkv_split_forward(out, out + nq, out + nq + nk, c->qkv, c->n, c->g, c->r, c->d);
}

static void test_qkv_split_megatron_layout(void)
{
    int64_t n = 3, g = 2, r = 3, d = 4, row = g * (r + 2) * d;
    float *qkv = kc_alloc(n * row), *out = kc_alloc(n * row), *dout = kc_alloc(n * row);
    float *dqkv = kc_alloc(n * row);
    for (int64_t i = 0; i < n * row; i++)
        qkv[i] = (float)i;
    int64_t nq = n * g * r * d, nk = n * g * d;
    float *q = out, *k = out + nq, *v = out + nq + nk;
    tsr_qkv_split_forward(q, k, v, qkv, n, g, r, d);
    for (int64_t i = 0; i < n; i++)
        for (int64_t gg = 0; gg < g; gg++) {
            for (int64_t hh = 0; hh < r; hh++)
                for (int64_t j = 0; j < d; j++)
                    CU_ASSERT_EQUAL(q[((i * g + gg) * r + hh) * d + j],
                                    (float)(i * row + (gg * (r + 2) + hh) * d + j));
            for (int64_t j = 0; j < d; j++) {
                CU_ASSERT_EQUAL(k[(i * g + gg) * d + j], (float)(i * row + (gg * (r + 2) + r) * d + j));
                CU_ASSERT_EQUAL(v[(i * g + gg) * d + j],
                                (float)(i * row + (gg * (r + 2) + r + 1) * d + j));
            }
        }
    kc_fill_normal(dout, n * row, 70, 0, 1);
    tsr_qkv_split_backward(dqkv, dout, dout + nq, dout + nq + nk, n, g, r, d);
    qkv_ctx c = {qkv, n, g, r, d};
    CU_ASSERT_TRUE(kc_grad_check(&c, qkv_fwd, qkv, n * row, dqkv, dout, n * row, 1000, 1e-2f,
                                 "qkv") < KC_FD_TOL);
    float *d1 = kc_alloc(n * row);
    memcpy(d1, dqkv, sizeof(float) * (size_t)(n * row));
    tsr_qkv_split_backward(dqkv, dout, dout + nq, dout + nq + nk, n, g, r, d);
    for (int64_t i = 0; i < n * row; i++)
        CU_ASSERT_EQUAL(dqkv[i], 2.0f * d1[i]);
    free(d1);
    tsr_qkv_split_backward(NULL, dout, dout + nq, dout + nq + nk, n, g, r, d);
    /* NULL dk: only the k slots stay zero */
    float *d2 = kc_alloc(n * row);
    tsr_qkv_split_backward(d2, dout, NULL, dout + nq + nk, n, g, r, d);
    for (int64_t i = 0; i < n; i++)
        for (int64_t gg = 0; gg < g; gg++)
            for (int64_t j = 0; j < d; j++)
                CU_ASSERT_EQUAL(d2[i * row + (gg * (r + 2) + r) * d + j], 0.0f);
    free(qkv), free(out), free(dout), free(dqkv), free(d2);
}

/* ---- elementwise ------------------------------------------------------------------ */

static void test_elementwise(void)
{
    int64_t n = 100003; /* above the parallel threshold, odd */
    float *a = kc_alloc(n), *b = kc_alloc(n), *y = kc_alloc(n);
    kc_fill_normal(a, n, 80, 0, 1);
    kc_fill_normal(b, n, 81, 0, 1);
    tsr_add_forward(y, a, b, n);
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(y[i], a[i] + b[i]);
    tsr_accumulate(y, a, n);
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(y[i], (a[i] + b[i]) + a[i]);
    memcpy(y, a, sizeof(float) * (size_t)n);
    tsr_add_forward(a, a, b, n); /* out aliasing an input */
    for (int64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(a[i], y[i] + b[i]);
    tsr_scale(b, 0.5f, n);
    double ref = 0.0;
    for (int64_t i = 0; i < n; i++)
        ref += (double)b[i] * b[i];
    TSR_ASSERT_REL(tsr_sum_squares(b, n), ref, 1e-12);
    CU_ASSERT_EQUAL(tsr_sum_squares(b, 0), 0.0);
    /* thread count does not change the norm's bits */
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double s1 = tsr_sum_squares(b, n);
    omp_set_num_threads(3);
    double s3 = tsr_sum_squares(b, n);
    omp_set_num_threads(saved);
    CU_ASSERT_EQUAL(memcmp(&s1, &s3, sizeof s1), 0);
    free(a), free(b), free(y);
}

/* ---- determinism ------------------------------------------------------------------ */

/* Everything the kernels below compute, at sizes above the parallel
 * threshold, into one buffer: bitwise equal for 1 and 3 threads (the
 * reductions over rows use fixed partitions), and run to run. */
static void run_all_row_kernels(float *res, const float *x, const float *g, const int32_t *tok,
                                int64_t n, int64_t c)
{
    float *w = kc_alloc(c), *bias = kc_alloc(c), *mean = kc_alloc(n), *rstd = kc_alloc(n);
    kc_fill_normal(w, c, 300, 1, 0.2f);
    kc_fill_normal(bias, c, 301, 0, 0.2f);
    float *p = res;
    tsr_layernorm_forward(p, mean, rstd, x, w, bias, n, c, 1e-5f), p += n * c;
    tsr_layernorm_backward(p, p + n * c, p + n * c + c, g, x, w, mean, rstd, n, c);
    p += n * c + 2 * c;
    tsr_rmsnorm_forward(p, rstd, x, w, n, c, 1e-5f), p += n * c;
    tsr_rmsnorm_backward(p, p + n * c, g, x, w, rstd, n, c), p += n * c + c;
    tsr_gelu_forward(p, x, n * c), p += n * c;
    tsr_gelu_backward(p, g, x, n * c), p += n * c;
    tsr_embedding_backward(p, g, tok, n, c, 0, 50), p += 50 * c;
    tsr_position_add_backward(p, g, 4, n / 4, c, 3), p += (n / 4 + 3) * c;
    tsr_rope_forward(p, x, 4, n / 4, c / 8, 8, 0, 10000.0f), p += n * c;
    tsr_swiglu_backward(p, g, x, n, c / 2), p += n * c;
    tsr_linear_backward(NULL, NULL, p, g, x, w, n, c, c), p += c;
    free(w), free(bias), free(mean), free(rstd);
}

static void test_deterministic_across_threads_and_runs(void)
{
    int64_t n = 400, c = 200;
    int64_t total = 9 * n * c + 4 * c + 50 * c + (n / 4 + 3) * c + c;
    float *x = kc_alloc(n * c), *g = kc_alloc(n * c);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n);
    kc_fill_normal(x, n * c, 310, 0, 1);
    kc_fill_normal(g, n * c, 311, 0, 1);
    for (int64_t i = 0; i < n; i++)
        tok[i] = (int32_t)(i * 31 % 50);
    float *r[3] = {kc_alloc(total), kc_alloc(total), kc_alloc(total)};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_all_row_kernels(r[0], x, g, tok, n, c);
    omp_set_num_threads(3);
    run_all_row_kernels(r[1], x, g, tok, n, c);
    run_all_row_kernels(r[2], x, g, tok, n, c);
    omp_set_num_threads(saved);
    CU_ASSERT_EQUAL(memcmp(r[0], r[1], sizeof(float) * (size_t)total), 0);
    CU_ASSERT_EQUAL(memcmp(r[1], r[2], sizeof(float) * (size_t)total), 0);
    /* the sgemm-backed linear: run to run at a fixed thread count */
    float *w = kc_alloc(c * c), *o1 = kc_alloc(n * c + c * c), *o2 = kc_alloc(n * c + c * c);
    kc_fill_normal(w, c * c, 312, 0, 0.1f);
    tsr_linear_forward(o1, x, w, NULL, n, c, c);
    tsr_linear_backward(NULL, o1 + n * c, NULL, g, x, w, n, c, c);
    tsr_linear_forward(o2, x, w, NULL, n, c, c);
    tsr_linear_backward(NULL, o2 + n * c, NULL, g, x, w, n, c, c);
    CU_ASSERT_EQUAL(memcmp(o1, o2, sizeof(float) * (size_t)(n * c + c * c)), 0);
    free(x), free(g), free(tok), free(r[0]), free(r[1]), free(r[2]), free(w), free(o1), free(o2);
}

/* ---- AdamW -------------------------------------------------------------------------- */

static void test_adamw_two_steps_by_hand(void)
{
    int64_t n = 37;
    float *p = kc_alloc(n), *g = kc_alloc(n), *m = kc_alloc(n), *v = kc_alloc(n);
    double *pr = calloc((size_t)n, sizeof(double)), *mr = calloc((size_t)n, sizeof(double));
    double *vr = calloc((size_t)n, sizeof(double));
    kc_fill_normal(p, n, 90, 0, 1);
    for (int64_t i = 0; i < n; i++)
        pr[i] = p[i];
    double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, gs = 0.5;
    for (int64_t step = 1; step <= 2; step++) {
        kc_fill_normal(g, n, 91 + (uint64_t)step, 0, 1);
        tsr_adamw_update(p, g, m, v, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
                         step, (float)gs);
        for (int64_t i = 0; i < n; i++) {
            double gi = g[i] * gs;
            mr[i] = b1 * mr[i] + (1 - b1) * gi;
            vr[i] = b2 * vr[i] + (1 - b2) * gi * gi;
            double mhat = mr[i] / (1 - pow(b1, (double)step));
            double vhat = vr[i] / (1 - pow(b2, (double)step));
            pr[i] -= lr * (mhat / (sqrt(vhat) + eps) + wd * pr[i]);
        }
        CU_ASSERT_TRUE(kc_max_rel_diff(p, pr, n, 1e-3) < 1e-5);
        CU_ASSERT_TRUE(kc_max_rel_diff(m, mr, n, 1e-3) < 1e-5);
        CU_ASSERT_TRUE(kc_max_rel_diff(v, vr, n, 1e-6) < 1e-5);
    }
    /* step 1, grad g: the update is lr * sign(g) (m_hat/sqrt(v_hat) = g/|g|)
     * plus the decay of the old parameter */
    float p1 = 2.0f, g1 = -3.0f, m1 = 0, v1 = 0;
    tsr_adamw_update(&p1, &g1, &m1, &v1, 1, 0.1f, 0.9f, 0.999f, 0.0f, 0.5f, 1, 1.0f);
    TSR_ASSERT_REL(p1, 2.0 - 0.1 * (-1.0 + 0.5 * 2.0), 1e-6);
    free(p), free(g), free(m), free(v), free(pr), free(mr), free(vr);
}

static const tsr_test_case dense_cases[] = {
    TSR_TEST(test_shared_exp_accuracy_and_special_values),
    TSR_TEST(test_linear_forward_matches_naive),
    TSR_TEST(test_linear_backward_finite_differences),
    TSR_TEST(test_layernorm),
    TSR_TEST(test_rmsnorm),
    TSR_TEST(test_gelu_matches_torch_tanh_formula),
    TSR_TEST(test_gelu_backward),
    TSR_TEST(test_swiglu),
    TSR_TEST(test_embedding_and_vocab_slices),
    TSR_TEST(test_position_embedding_with_offset),
    TSR_TEST(test_rope_matches_direct_formula),
    TSR_TEST(test_qkv_split_megatron_layout),
    TSR_TEST(test_elementwise),
    TSR_TEST(test_deterministic_across_threads_and_runs),
    TSR_TEST(test_adamw_two_steps_by_hand),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("kernels_dense", dense_cases)};
    return tsr_test_main(suites, 1);
}
