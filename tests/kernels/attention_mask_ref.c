/*
 * attention_mask_ref.c - test cases, the visibility rule and the naive
 * reference of the masked-attention tests (see attention_mask_ref.h).
 */
#include "attention_mask_ref.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_check.h"

void mc_init(mask_case *c, int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
             uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->b = b, c->t = t, c->hq = hq, c->hkv = hkv, c->d = d;
    c->mask.pattern = TSR_ATTN_CAUSAL;
    c->q = kc_alloc(b * t * hq * d);
    c->k = kc_alloc(b * t * hkv * d);
    c->v = kc_alloc(b * t * hkv * d);
    c->out = kc_alloc(b * t * hq * d);
    c->lse = kc_alloc(b * hq * t);
    /* sized for more threads than any test sets */
    int saved = omp_get_max_threads();
    omp_set_num_threads(4);
    c->scratch = kc_alloc((int64_t)tsr_attention_scratch_floats(t, d));
    omp_set_num_threads(saved);
    kc_fill_normal(c->q, b * t * hq * d, seed, 0, 1.0f);
    kc_fill_normal(c->k, b * t * hkv * d, seed + 1, 0, 1.0f);
    kc_fill_normal(c->v, b * t * hkv * d, seed + 2, 0, 1.0f);
}

void mc_free(mask_case *c)
{
    free(c->q), free(c->k), free(c->v), free(c->out), free(c->lse), free(c->scratch);
    free(c->doc), free(c->plo), free(c->phi);
}

void mc_arrays(mask_case *c)
{
    size_t n = (size_t)(c->b * c->t);
    c->doc = calloc(n, sizeof(int32_t));
    c->plo = calloc(n, sizeof(int32_t));
    c->phi = calloc(n, sizeof(int32_t));
    if (c->doc == NULL || c->plo == NULL || c->phi == NULL)
        abort();
    c->mask.doc_start = c->doc;
    c->mask.prefix_lo = c->plo;
    c->mask.prefix_hi = c->phi;
}

void mc_documents(mask_case *c, int64_t s, const int *starts, int n)
{
    int32_t *doc = c->doc + s * c->t;
    for (int64_t i = 0, at = 0; i < c->t; i++) {
        while (at + 1 < n && starts[at + 1] <= i)
            at++;
        doc[i] = starts[at];
    }
}

void mc_prefix(mask_case *c, int64_t s, int plen, int all_rows)
{
    int32_t *doc = c->doc + s * c->t, *lo = c->plo + s * c->t, *hi = c->phi + s * c->t;
    for (int64_t i = 0; i < c->t; i++) {
        int64_t ds = doc[i], end = ds;
        if (ds > i)
            continue; /* padding */
        while (end < c->t && doc[end] == ds)
            end++;
        int64_t p1 = ds + plen < end ? ds + plen : end;
        if (i < p1 || all_rows)
            lo[i] = (int32_t)ds, hi[i] = (int32_t)p1;
    }
}

void mc_padding(mask_case *c, int64_t s, int64_t from)
{
    for (int64_t i = from; i < c->t; i++) {
        c->doc[s * c->t + i] = (int32_t)(i + 1);
        c->plo[s * c->t + i] = c->phi[s * c->t + i] = 0;
    }
}

void mc_forward(void *p, float *out)
{
    mask_case *c = p;
    tsr_attention_forward(out, c->lse, c->q, c->k, c->v, c->b, c->t, c->hq, c->hkv, c->d,
                          &c->mask, NULL, c->scratch);
}

void mc_backward(const mask_case *c, float *dq, float *dk, float *dv, const float *dout)
{
    tsr_attention_backward(dq, dk, dv, dout, c->q, c->k, c->v, c->out, c->lse, c->b, c->t, c->hq,
                           c->hkv, c->d, &c->mask, NULL, c->scratch);
}

int ref_sees(const tsr_attn_mask *m, int64_t s, int64_t t, int64_t i, int64_t j)
{
    int64_t row = s * t + i;
    if (m != NULL && m->prefix_lo != NULL && m->prefix_hi != NULL && m->prefix_lo[row] <= j &&
        j < m->prefix_hi[row])
        return 1; /* bidirectional part */
    int64_t ds = m != NULL && m->doc_start != NULL ? m->doc_start[row] : 0;
    if (j < ds || j > i)
        return 0; /* outside the causal part */
    if (m == NULL)
        return 1;
    int64_t bi = i / (m->block > 0 ? m->block : 1), bj = j / (m->block > 0 ? m->block : 1);
    int64_t l = m->block > 0 ? m->stride / m->block : 1;
    switch (m->pattern) {
    case TSR_ATTN_WINDOW:
        return i - m->window < j;
    case TSR_ATTN_FIXED:
        return bi / l == bj / l || bj % l == l - 1;
    case TSR_ATTN_STRIDED:
        return bi - bj < l || (bi - bj) % l == 0;
    default:
        return 1;
    }
}

void ref_attention(double *out, double *lse, const mask_case *c)
{
    int64_t t = c->t, d = c->d, r = c->hq / c->hkv;
    double *sc = calloc((size_t)t, sizeof(double));
    char *on = calloc((size_t)t, 1);
    for (int64_t s = 0; s < c->b; s++)
        for (int64_t h = 0; h < c->hq; h++)
            for (int64_t i = 0; i < t; i++) {
                const float *qi = c->q + ((s * t + i) * c->hq + h) * d;
                double *oi = out + ((s * t + i) * c->hq + h) * d, mx = -INFINITY;
                for (int64_t j = 0; j < t; j++) {
                    on[j] = (char)ref_sees(&c->mask, s, t, i, j);
                    if (!on[j])
                        continue;
                    const float *kj = c->k + ((s * t + j) * c->hkv + h / r) * d;
                    double dot = 0;
                    for (int64_t e = 0; e < d; e++)
                        dot += (double)qi[e] * kj[e];
                    sc[j] = dot / sqrt((double)d);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int64_t e = 0; e < d; e++)
                    oi[e] = 0;
                if (mx == -INFINITY) { /* sees no key */
                    lse[(s * c->hq + h) * t + i] = -INFINITY;
                    continue;
                }
                double sum = 0;
                for (int64_t j = 0; j < t; j++)
                    sum += on[j] ? exp(sc[j] - mx) : 0.0;
                lse[(s * c->hq + h) * t + i] = mx + log(sum);
                for (int64_t j = 0; j < t; j++) {
                    if (!on[j])
                        continue;
                    double pj = exp(sc[j] - mx) / sum;
                    const float *vj = c->v + ((s * t + j) * c->hkv + h / r) * d;
                    for (int64_t e = 0; e < d; e++)
                        oi[e] += pj * vj[e];
                }
            }
    free(sc), free(on);
}

int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

int mc_check_forward(mask_case *c, const char *what)
{
    int64_t t = c->t, d = c->d, no = c->b * t * c->hq * d, nl = c->b * c->hq * t;
    double *ro = calloc((size_t)no, sizeof(double)), *rl = calloc((size_t)nl, sizeof(double));
    float *lse = kc_alloc(nl);
    ref_attention(ro, rl, c);
    for (int64_t i = 0; i < no; i++)
        c->out[i] = NAN; /* every element must be written */
    mc_forward(c, c->out);
    int exact = 1, empty_rows = 0;
    /* rows that see nothing: exactly out 0, lse -inf; then compared as 0 */
    for (int64_t s = 0; s < c->b; s++)
        for (int64_t h = 0; h < c->hq; h++)
            for (int64_t i = 0; i < t; i++) {
                int64_t li = (s * c->hq + h) * t + i;
                lse[li] = c->lse[li];
                if (rl[li] != -INFINITY)
                    continue;
                empty_rows++;
                exact &= c->lse[li] == -INFINITY;
                const float *oi = c->out + ((s * t + i) * c->hq + h) * d;
                for (int64_t e = 0; e < d; e++)
                    exact &= oi[e] == 0.0f;
                rl[li] = 0.0;
                lse[li] = 0.0f;
            }
    /* kc_max_rel_diff is INFINITY on a NaN */
    double eo = kc_max_rel_diff(c->out, ro, no, REF_FLOOR);
    double el = kc_max_rel_diff(lse, rl, nl, REF_FLOOR), abs_err = 0;
    for (int64_t i = 0; i < no; i++)
        abs_err = fmax(abs_err, fabs((double)c->out[i] - ro[i]));
    int ok = exact && eo <= REF_OUT_TOL && el <= REF_LSE_TOL;
    if (!ok || getenv("KC_VERBOSE") != NULL)
        fprintf(stderr,
                "%s (B%lld T%lld Hq%lld Hkv%lld D%lld, %d empty rows): out %.3g (abs %.3g) "
                "lse %.3g%s\n",
                what, (long long)c->b, (long long)t, (long long)c->hq, (long long)c->hkv,
                (long long)d, empty_rows, eo, abs_err, el, exact ? "" : " (empty rows not exact)");
    free(ro), free(rl), free(lse);
    return ok;
}
