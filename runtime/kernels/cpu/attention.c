/*
 * attention.c - causal self-attention with grouped query heads, computed in
 * 64x64 tiles with an online softmax (flash-attention style).
 *
 * Forward: one work unit is (sample, query head, query block). It walks
 * the key blocks up to the diagonal, keeping a running row max m, row sum
 * l and unnormalised output O for its 64 queries; only one 64x64 score
 * tile per thread exists at a time. It saves lse = m + log(l) per query.
 * Backward: one work unit is (sample, key/value head). For each key block
 * it accumulates dK and dV over every query head of the group and every
 * query block at or below the diagonal, recomputing the probabilities as
 * exp(S - lse), and adds its dQ contributions to dq in key-block order.
 * A unit's results depend only on its inputs, never on which thread ran
 * it or when, so both passes are bitwise the same for any thread count.
 *
 * Tiles are copied into per-thread scratch with the head dimension padded
 * with zeros to a multiple of 16 (Dp), and the products run through one
 * register-blocked micro-kernel (4 rows x up to 64 columns, tsr_v16
 * lanes). q is pre-multiplied by 1/sqrt(D) in both passes, so forward and
 * backward see bitwise the same scores. On the diagonal tile the
 * micro-kernel skips the row/column ranges that the causal mask zeroes.
 *
 * Attention-probability dropout (optional) keeps score (i, j) of head h
 * of sample b when tsr_rng_uniform(key, index) >= p, with index =
 * ((sample * heads_global + global head) * t_global + global i) * t_global
 * + global j, and scales it by 1/(1-p); the softmax normaliser is that of
 * the undropped probabilities, as in torch's dropout(softmax(S)) @ V.
 *
 * Called by the attention block (over this rank's local heads).
 */
#include <math.h>
#include <omp.h>

#include "simd.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

#define BLK 64

typedef enum {
    TILE_FULL,    /* every row uses all columns and the whole k range */
    TILE_N_LOWER, /* row i needs only columns j <= i (scores on the diagonal) */
    TILE_K_UPPER, /* row i needs only k <= i (P @ V, dS @ K on the diagonal) */
    TILE_K_LOWER  /* row j needs only k >= j (P^T @ dO, dS^T @ Q on the diagonal) */
} tile_mode;

static inline int64_t round_up(int64_t x, int64_t m)
{
    return (x + m - 1) / m * m;
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* C rows [0, 4) x 16*NV columns (+)= A rows [0, 4) x k-range [k0, k1) @ B.
 * A(i, l) = a[i * ars + l * acs]; B row-major with ldb; C row-major ldc.
 * Always inlined with a constant nv so that the accumulators stay in
 * registers. */
static inline __attribute__((always_inline)) void
micro_4xn(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs, const float *b,
          int64_t ldb, int64_t k0, int64_t k1, const int nv, int zero)
{
    tsr_v16 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < nv; v++) {
            if (zero) {
                const tsr_v16 z = {0};
                acc[r][v] = z;
            } else {
                acc[r][v] = TSR_V16_LOAD(c + r * ldc + v * 16);
            }
        }
    for (int64_t l = k0; l < k1; l++) {
        tsr_v16 bv[4];
        for (int v = 0; v < nv; v++)
            bv[v] = TSR_V16_LOAD(b + l * ldb + v * 16);
        for (int r = 0; r < 4; r++) {
            float s = a[r * ars + l * acs];
            for (int v = 0; v < nv; v++)
                acc[r][v] += s * bv[v];
        }
    }
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < nv; v++)
            TSR_V16_STORE(c + r * ldc + v * 16, acc[r][v]);
}

/* C (m x n) (+)= A (m x k) @ B (k x n), m a multiple of 4, n of 16. In the
 * causal modes, entries the mask makes zero are skipped; with zero set,
 * the C entries of skipped columns (TILE_N_LOWER) are left unwritten. */
static void tile_gemm(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs,
                      const float *b, int64_t ldb, int64_t m, int64_t n, int64_t k, int zero,
                      tile_mode mode)
{
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        int64_t nn = n, k0 = 0, k1 = k;
        if (mode == TILE_N_LOWER)
            nn = min64(n, round_up(i0 + 4, 16));
        else if (mode == TILE_K_UPPER)
            k1 = min64(k, i0 + 4);
        else if (mode == TILE_K_LOWER)
            k0 = min64(k, i0);
        float *ci = c + i0 * ldc;
        const float *ai = a + i0 * ars;
        for (int64_t j0 = 0; j0 < nn; j0 += 64) {
            switch (min64(4, (nn - j0) / 16)) {
            case 4:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 4, zero);
                break;
            case 3:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 3, zero);
                break;
            case 2:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 2, zero);
                break;
            default:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 1, zero);
                break;
            }
        }
    }
}

/* Per-thread scratch, in floats. Every piece is a multiple of 16 floats so
 * that 64-byte alignment of the base carries to every piece. */
static int64_t padded_d(int64_t d)
{
    return round_up(d, 16);
}

static int64_t per_thread_floats(int64_t d)
{
    int64_t dp = padded_d(d);
    int64_t fwd = 4 * BLK * dp + 2 * BLK * BLK + 2 * BLK;
    int64_t bwd = 9 * BLK * dp + 3 * BLK * BLK + 2 * BLK;
    return (fwd > bwd ? fwd : bwd) + 16; /* + alignment slack */
}

size_t tsr_attention_scratch_floats(int64_t t, int64_t d)
{
    (void)t; /* tiles are BLK long whatever T is */
    return (size_t)omp_get_max_threads() * (size_t)per_thread_floats(d);
}

static float *thread_scratch(float *scratch, int64_t d)
{
    float *base = scratch + (int64_t)omp_get_thread_num() * per_thread_floats(d);
    uintptr_t addr = (uintptr_t)base;
    return (float *)(void *)((addr + 63) & ~(uintptr_t)63);
}

/* rows [0, n) of a (.., H, D)-strided tensor into dst (rows x dp), zero
 * padded to `rows` rows and dp columns; multiplied by `mul`. */
static void load_rows(float *dst, int64_t dp, const float *src, int64_t stride, int64_t n,
                      int64_t rows, int64_t d, float mul)
{
    for (int64_t i = 0; i < rows; i++) {
        float *o = dst + i * dp;
        if (i < n) {
            const float *s = src + i * stride;
            for (int64_t j = 0; j < d; j++)
                o[j] = s[j] * mul;
            for (int64_t j = d; j < dp; j++)
                o[j] = 0.0f;
        } else {
            memset(o, 0, (size_t)dp * sizeof(float));
        }
    }
}

/* the transpose of load_rows: dst (dp x cols), column i = source row i */
static void load_cols(float *dst, int64_t ld, const float *src, int64_t stride, int64_t n,
                      int64_t cols, int64_t d, int64_t dp)
{
    for (int64_t j = 0; j < dp; j++)
        memset(dst + j * ld, 0, (size_t)cols * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        const float *s = src + i * stride;
        for (int64_t j = 0; j < d; j++)
            dst[j * ld + i] = s[j];
    }
}

typedef struct attn_shape {
    int64_t b, t, hq, hkv, d, dp, nblk;
    float scale;
} attn_shape;

/* 1/(1-p) where score (q0 + i, k0 + j) of (sample, head) is kept, else 0,
 * into row i of mask (ld BLK), for j < nk16; rows [mq, mq4) are 0 */
static void dropout_tile(float *mask, const tsr_dropout *dp, int64_t sample, int64_t head,
                         int64_t q0, int64_t mq, int64_t mq4, int64_t k0, int64_t nk16)
{
    float keep = dp->p < 1.0f ? 1.0f / (1.0f - dp->p) : 0.0f;
    int64_t tg = dp->t_global;
    uint64_t row0 = (uint64_t)(((dp->sample_offset + sample) * dp->heads_global + dp->head_offset +
                                head) *
                               tg);
    for (int64_t i = 0; i < mq; i++) {
        uint64_t base = (row0 + (uint64_t)(dp->t_offset + q0 + i)) * (uint64_t)tg +
                        (uint64_t)(dp->t_offset + k0);
        for (int64_t j = 0; j < nk16; j++)
            mask[i * BLK + j] = tsr_rng_uniform(dp->key, base + (uint64_t)j) >= dp->p ? keep : 0.0f;
    }
    for (int64_t i = mq; i < mq4; i++)
        memset(mask + i * BLK, 0, (size_t)nk16 * sizeof(float));
}

/* Query block qb of head h of sample bi: out rows and lse. */
static void forward_unit(float *out, float *lse, const float *q, const float *k, const float *v,
                         const attn_shape *sh, int64_t bi, int64_t h, int64_t qb,
                         const tsr_dropout *dropout, float *ws)
{
    int64_t dp = sh->dp, d = sh->d, t = sh->t;
    int64_t g = h / (sh->hq / sh->hkv);
    float *qs = ws, *kt = qs + BLK * dp, *vs = kt + BLK * dp, *o = vs + BLK * dp;
    float *s = o + BLK * dp, *m = s + BLK * BLK, *l = m + BLK, *mask = l + BLK;
    int64_t q0 = qb * BLK, mq = min64(BLK, t - q0), mq4 = round_up(mq, 4);
    int64_t qstride = sh->hq * d, kstride = sh->hkv * d;
    const float *qsrc = q + (bi * t + q0) * qstride + h * d;
    load_rows(qs, dp, qsrc, qstride, mq, mq4, d, sh->scale);
    for (int64_t i = 0; i < mq4; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    memset(o, 0, (size_t)(mq4 * dp) * sizeof(float));
    const tsr_v16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const tsr_v16 zero = {0};
    for (int64_t kb = 0; kb <= qb; kb++) {
        int64_t k0 = kb * BLK, nk = min64(BLK, t - k0), nk16 = round_up(nk, 16);
        const float *ksrc = k + (bi * t + k0) * kstride + g * d;
        const float *vsrc = v + (bi * t + k0) * kstride + g * d;
        load_cols(kt, BLK, ksrc, kstride, nk, nk16, d, dp);
        load_rows(vs, dp, vsrc, kstride, nk, nk16, d, 1.0f);
        int diag = kb == qb;
        tile_gemm(s, BLK, qs, dp, 1, kt, BLK, mq4, nk16, dp, 1, diag ? TILE_N_LOWER : TILE_FULL);
        for (int64_t i = 0; i < mq4; i++) {
            float *si = s + i * BLK;
            float jmax = (float)(diag ? min64(i + 1, nk) : nk);
            tsr_v16 mx = zero - INFINITY;
            for (int64_t j = 0; j < nk16; j += 16) {
                tsr_v16 valid_s = TSR_V16_SELECT(iota + (float)j < jmax, TSR_V16_LOAD(si + j),
                                                 zero - INFINITY);
                mx = TSR_V16_MAX(mx, valid_s);
            }
            float m_new = tsr_v16_max(mx);
            m_new = m[i] > m_new ? m[i] : m_new;
            float alpha = tsr_expf(m[i] - m_new);
            tsr_v16 sum = zero;
            for (int64_t j = 0; j < nk16; j += 16) {
                tsr_v16 p = tsr_expf_v(TSR_V16_LOAD(si + j) - m_new);
                p = TSR_V16_SELECT(iota + (float)j < jmax, p, zero);
                sum += p;
                TSR_V16_STORE(si + j, p);
            }
            l[i] = l[i] * alpha + tsr_v16_sum(sum);
            m[i] = m_new;
            float *oi = o + i * dp;
            for (int64_t j = 0; j < dp; j += 16)
                TSR_V16_STORE(oi + j, TSR_V16_LOAD(oi + j) * alpha);
        }
        if (dropout != NULL && dropout->p > 0.0f) {
            dropout_tile(mask, dropout, bi, h, q0, mq, mq4, k0, nk16);
            for (int64_t i = 0; i < mq4; i++)
                for (int64_t j = 0; j < nk16; j++)
                    s[i * BLK + j] *= mask[i * BLK + j];
        }
        tile_gemm(o, dp, s, BLK, 1, vs, dp, mq4, dp, nk16, 0, diag ? TILE_K_UPPER : TILE_FULL);
    }
    for (int64_t i = 0; i < mq; i++) {
        float inv = 1.0f / l[i];
        float *dst = out + ((bi * t + q0 + i) * sh->hq + h) * d;
        for (int64_t j = 0; j < d; j++)
            dst[j] = o[i * dp + j] * inv;
        lse[(bi * sh->hq + h) * t + q0 + i] = m[i] + logf(l[i]);
    }
}

static int attn_shape_init(attn_shape *sh, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                           int64_t d)
{
    if (b <= 0 || t <= 0 || hq <= 0 || hkv <= 0 || d <= 0 || hq % hkv != 0)
        return 0;
    sh->b = b;
    sh->t = t;
    sh->hq = hq;
    sh->hkv = hkv;
    sh->d = d;
    sh->dp = padded_d(d);
    sh->nblk = (t + BLK - 1) / BLK;
    sh->scale = 1.0f / sqrtf((float)d);
    return 1;
}

void tsr_attention_forward(float *out, float *lse, const float *q, const float *k,
                           const float *v, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                           int64_t d, const tsr_dropout *dropout, float *scratch)
{
    attn_shape sh;
    if (!attn_shape_init(&sh, b, t, hq, hkv, d))
        return;
    int64_t units = b * hq * sh.nblk;
    /* the longest rows (last query blocks) first, for a short tail */
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; u++) {
        int64_t qb = sh.nblk - 1 - u % sh.nblk, bh = u / sh.nblk;
        forward_unit(out, lse, q, k, v, &sh, bh / hq, bh % hq, qb, dropout,
                     thread_scratch(scratch, d));
    }
}

typedef struct bwd_buffers {
    float *qs, *dos, *dqt, *ks, *kt, *vs, *vt, *dka, *dva, *p, *ds, *pd, *lse, *di;
} bwd_buffers;

static bwd_buffers bwd_carve(float *ws, int64_t dp)
{
    bwd_buffers w;
    w.qs = ws;
    w.dos = w.qs + BLK * dp;
    w.dqt = w.dos + BLK * dp;
    w.ks = w.dqt + BLK * dp;
    w.kt = w.ks + BLK * dp;
    w.vs = w.kt + BLK * dp;
    w.vt = w.vs + BLK * dp;
    w.dka = w.vt + BLK * dp;
    w.dva = w.dka + BLK * dp;
    w.p = w.dva + BLK * dp;
    w.ds = w.p + BLK * BLK;
    w.pd = w.ds + BLK * BLK;
    w.lse = w.pd + BLK * BLK;
    w.di = w.lse + BLK;
    return w;
}

typedef struct bwd_args {
    float *dq, *dk, *dv;
    const float *dout, *q, *k, *v, *out, *lse;
    const tsr_dropout *dropout;
} bwd_args;

/* One (query head h, query block qb) against the key block loaded in w. */
static void backward_tile(const bwd_args *a, const attn_shape *sh, bwd_buffers *w, int64_t bi,
                          int64_t h, int64_t qb, int64_t kb)
{
    int64_t dp = sh->dp, d = sh->d, t = sh->t;
    int64_t q0 = qb * BLK, mq = min64(BLK, t - q0), mq4 = round_up(mq, 4);
    int64_t k0 = kb * BLK, nk = min64(BLK, t - k0), nk16 = round_up(nk, 16);
    int64_t qstride = sh->hq * d;
    int diag = qb == kb;
    const float *qsrc = a->q + (bi * t + q0) * qstride + h * d;
    const float *dosrc = a->dout + (bi * t + q0) * qstride + h * d;
    const float *osrc = a->out + (bi * t + q0) * qstride + h * d;
    load_rows(w->qs, dp, qsrc, qstride, mq, mq4, d, sh->scale);
    load_rows(w->dos, dp, dosrc, qstride, mq, mq4, d, 1.0f);
    for (int64_t i = 0; i < mq4; i++) {
        if (i < mq) {
            const float *oi = osrc + i * qstride, *gi = dosrc + i * qstride;
            float s = 0.0f;
            for (int64_t j = 0; j < d; j++)
                s += oi[j] * gi[j];
            w->di[i] = s;
            w->lse[i] = a->lse[(bi * sh->hq + h) * t + q0 + i];
        } else {
            w->di[i] = 0.0f;
            w->lse[i] = INFINITY; /* padded rows: P = 0 */
        }
    }
    tile_mode nlow = diag ? TILE_N_LOWER : TILE_FULL;
    tile_mode klow = diag ? TILE_K_LOWER : TILE_FULL;
    int drop = a->dropout != NULL && a->dropout->p > 0.0f;
    const tsr_v16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const tsr_v16 zero = {0};

    /* P = exp(S - lse) on the causal support, 0 elsewhere */
    tile_gemm(w->p, BLK, w->qs, dp, 1, w->kt, BLK, mq4, nk16, dp, 1, nlow);
    for (int64_t i = 0; i < mq4; i++) {
        float jmax = (float)(i >= mq ? 0 : diag ? min64(i + 1, nk) : nk);
        float *pi = w->p + i * BLK;
        for (int64_t j = 0; j < nk16; j += 16) {
            tsr_v16 e = tsr_expf_v(TSR_V16_LOAD(pi + j) - w->lse[i]);
            TSR_V16_STORE(pi + j, TSR_V16_SELECT(iota + (float)j < jmax, e, zero));
        }
    }
    const float *pv = w->p;
    if (drop) {
        dropout_tile(w->pd, a->dropout, bi, h, q0, mq, mq4, k0, nk16);
        for (int64_t i = 0; i < mq4; i++)
            for (int64_t j = 0; j < nk16; j++)
                w->ds[i * BLK + j] = w->p[i * BLK + j] * w->pd[i * BLK + j];
        pv = w->ds;
    }
    /* dV += Pdrop^T dO */
    if (a->dv != NULL)
        tile_gemm(w->dva, dp, pv, 1, BLK, w->dos, dp, nk16, dp, mq4, 0, klow);
    if (a->dq == NULL && a->dk == NULL)
        return;
    /* dP = dO V^T (times the dropout mask); dS = P (dP - Di) */
    tile_gemm(w->ds, BLK, w->dos, dp, 1, w->vt, BLK, mq4, nk16, dp, 1, nlow);
    for (int64_t i = 0; i < mq4; i++) {
        float jmax = (float)(i >= mq ? 0 : diag ? min64(i + 1, nk) : nk);
        float *pi = w->p + i * BLK, *dsi = w->ds + i * BLK, *mi = w->pd + i * BLK;
        for (int64_t j = 0; j < nk16; j += 16) {
            tsr_v16 dpv = TSR_V16_LOAD(dsi + j);
            if (drop)
                dpv *= TSR_V16_LOAD(mi + j);
            tsr_v16 dsv = TSR_V16_LOAD(pi + j) * (dpv - w->di[i]);
            TSR_V16_STORE(dsi + j, TSR_V16_SELECT(iota + (float)j < jmax, dsv, zero));
        }
    }
    /* dK += dS^T (q / sqrt(D)); dQ += dS K / sqrt(D) */
    if (a->dk != NULL)
        tile_gemm(w->dka, dp, w->ds, 1, BLK, w->qs, dp, nk16, dp, mq4, 0, klow);
    if (a->dq != NULL) {
        tile_gemm(w->dqt, dp, w->ds, BLK, 1, w->ks, dp, mq4, dp, nk16, 1,
                  diag ? TILE_K_UPPER : TILE_FULL);
        for (int64_t i = 0; i < mq; i++) {
            float *dst = a->dq + ((bi * t + q0 + i) * sh->hq + h) * d;
            for (int64_t j = 0; j < d; j++)
                dst[j] += w->dqt[i * dp + j] * sh->scale;
        }
    }
}

/* Key/value head g of sample bi: every key block, every query head of the
 * group, every query block at or after the key block. */
static void backward_unit(const bwd_args *a, const attn_shape *sh, int64_t bi, int64_t g,
                          float *ws)
{
    int64_t dp = sh->dp, d = sh->d, t = sh->t, r = sh->hq / sh->hkv;
    int64_t kstride = sh->hkv * d;
    bwd_buffers w = bwd_carve(ws, dp);
    for (int64_t kb = 0; kb < sh->nblk; kb++) {
        int64_t k0 = kb * BLK, nk = min64(BLK, t - k0), nk16 = round_up(nk, 16);
        const float *ksrc = a->k + (bi * t + k0) * kstride + g * d;
        const float *vsrc = a->v + (bi * t + k0) * kstride + g * d;
        load_rows(w.ks, dp, ksrc, kstride, nk, nk16, d, 1.0f);
        load_cols(w.kt, BLK, ksrc, kstride, nk, nk16, d, dp);
        load_rows(w.vs, dp, vsrc, kstride, nk, nk16, d, 1.0f);
        load_cols(w.vt, BLK, vsrc, kstride, nk, nk16, d, dp);
        memset(w.dka, 0, (size_t)(nk16 * dp) * sizeof(float));
        memset(w.dva, 0, (size_t)(nk16 * dp) * sizeof(float));
        for (int64_t hh = 0; hh < r; hh++)
            for (int64_t qb = kb; qb < sh->nblk; qb++)
                backward_tile(a, sh, &w, bi, g * r + hh, qb, kb);
        for (int64_t j = 0; j < nk; j++) {
            float *dkr = a->dk != NULL ? a->dk + ((bi * t + k0 + j) * sh->hkv + g) * d : NULL;
            float *dvr = a->dv != NULL ? a->dv + ((bi * t + k0 + j) * sh->hkv + g) * d : NULL;
            for (int64_t c = 0; c < d; c++) {
                if (dkr != NULL)
                    dkr[c] += w.dka[j * dp + c];
                if (dvr != NULL)
                    dvr[c] += w.dva[j * dp + c];
            }
        }
    }
}

void tsr_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, const float *out,
                            const float *lse, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                            int64_t d, const tsr_dropout *dropout, float *scratch)
{
    attn_shape sh;
    if (!attn_shape_init(&sh, b, t, hq, hkv, d) || (dq == NULL && dk == NULL && dv == NULL))
        return;
    bwd_args a = {dq, dk, dv, dout, q, k, v, out, lse, dropout};
    int64_t units = b * hkv;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; u++)
        backward_unit(&a, &sh, u / hkv, u % hkv, thread_scratch(scratch, d));
}
