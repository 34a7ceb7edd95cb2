/*
 * attention.c - self-attention with grouped query heads under a mask
 * (causal, sliding window, block-sparse, documents, bidirectional
 * prefixes: tsr_attn_mask), computed in 64x64 tiles with an online softmax
 * (flash-attention style).
 *
 * Forward: one work unit is (sample, query head). It packs the head's keys
 * (transposed) and values once, a key block at a time as the tiles first
 * need it, and for each 64-query block walks the key blocks whose tile
 * the mask does not empty, keeping a running row max m,
 * row sum l and unnormalised output O; only one 64x64 score tile per
 * thread exists at a time. It saves lse = m + log(l) per query.
 * Backward: one work unit is (sample, key/value head), so that dK and dV
 * have a single writer. For every query head of the group it packs q, dO,
 * lse and Di = rowsum(dO * O), and for each key block (its K, K^T and V^T
 * packed with the first head) and each query block whose tile is not
 * empty recomputes P = exp(S - lse) and accumulates dV, dK and dQ in
 * packed buffers, written out once per head (dQ) or key block (dK, dV).
 * Empty tiles are skipped in both passes (attention_mask.c says which);
 * in the others the tile products skip, per group of 4 rows or columns,
 * what lies outside the hull of the counted scores (the upper triangle of
 * a diagonal tile, the lower one of a window's oldest tile), and the
 * scores the mask zeroes inside it are set to zero. A unit's results depend only on its
 * inputs, never on which thread ran it or when, so both passes are
 * bitwise the same for any thread count. Per thread the scratch is
 * O(T * D), never O(T^2). q is pre-multiplied by 1/sqrt(D) in both
 * passes, so forward and backward see bitwise the same scores.
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

#include "attention_mask.h"
#include "attention_tile.h"
#include "simd.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

#define BLK TSR_ATTN_BLK

typedef struct attn_shape {
    int64_t b, t, hq, hkv, d, dp, tp, nblk;
    float scale;
} attn_shape;

static void attn_shape_set(attn_shape *sh, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                           int64_t d)
{
    sh->b = b;
    sh->t = t;
    sh->hq = hq;
    sh->hkv = hkv;
    sh->d = d;
    sh->dp = tsr_round_up64(d, 16);
    sh->tp = tsr_round_up64(t, BLK);
    sh->nblk = sh->tp / BLK;
    sh->scale = 1.0f / sqrtf((float)d);
}

/* Floats of one per-query-block summary in the backward pass. */
#define QBLOCK_FLOATS ((int64_t)((sizeof(tsr_attn_qblock) + 3) / 4))

/* Per-thread scratch, in floats. Every piece is a multiple of 16 floats so
 * that 64-byte alignment of the base carries to every piece. */
static int64_t per_thread_floats(const attn_shape *sh)
{
    int64_t tp = sh->tp, dp = sh->dp;
    int64_t fwd = 2 * tp * dp + 2 * BLK * dp + 2 * BLK * BLK + 2 * BLK;
    int64_t bwd = 8 * tp * dp + 3 * BLK * BLK + 2 * tp +
                  tsr_round_up64(sh->nblk * QBLOCK_FLOATS, 16);
    return (fwd > bwd ? fwd : bwd) + TSR_ATTN_TILE_FLOATS + 16; /* + alignment slack */
}

size_t tsr_attention_scratch_floats(int64_t t, int64_t d)
{
    attn_shape sh;
    attn_shape_set(&sh, 1, t > 0 ? t : 1, 1, 1, d > 0 ? d : 1);
    return (size_t)omp_get_max_threads() * (size_t)per_thread_floats(&sh);
}

/* The thread's scratch: the tile's mask first, the pass's buffers after. */
static float *thread_scratch(float *scratch, const attn_shape *sh, tsr_attn_tile **tile)
{
    float *base = scratch + (int64_t)omp_get_thread_num() * per_thread_floats(sh);
    uintptr_t addr = (uintptr_t)base;
    float *aligned = (float *)(void *)((addr + 63) & ~(uintptr_t)63);
    *tile = (tsr_attn_tile *)(void *)aligned;
    return aligned + TSR_ATTN_TILE_FLOATS;
}

/* Lanes [j, j + TSR_VL) of row r that count in the tile. */
static inline tsr_vi tile_lanes(const tsr_attn_tile *tile, int64_t r, int64_t j)
{
    if (tile->elements) {
        tsr_vi lanes;
        memcpy(&lanes, tile->el + r * BLK + j, sizeof lanes);
        return lanes;
    }
    tsr_vf col = tsr_vf_iota() + (float)j;
    return (col >= tile->lo[r]) & (col < tile->hi[r]);
}

/* The columns [*j0, *j1) of tile row r that may count: its group of 4
 * rows' hull, in whole vectors. Work on a row stays inside it, so that a
 * window's tiles, half masked at either edge, cost what they count. */
static inline void row_span(const tsr_attn_tile *tile, int64_t r, int64_t nk16, int64_t *j0,
                            int64_t *j1)
{
    int64_t g = r / 4;
    *j0 = tile->row_lo[g] / TSR_VL * TSR_VL;
    *j1 = tsr_min64(nk16, tsr_round_up64(tile->row_hi[g], TSR_VL));
    if (*j1 < *j0)
        *j1 = *j0;
}

/* Zeroes row[0, j0) and row[j1, n): scores outside the span are 0. */
static inline void zero_outside(float *row, int64_t j0, int64_t j1, int64_t n)
{
    const tsr_vf zero = {0};
    for (int64_t j = 0; j < j0; j += TSR_VL)
        TSR_VF_STORE(row + j, zero);
    for (int64_t j = j1; j < n; j += TSR_VL)
        TSR_VF_STORE(row + j, zero);
}

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

static int dropout_on(const tsr_dropout *dropout)
{
    return dropout != NULL && dropout->p > 0.0f;
}

/* Key block kb of one head's K or V (its first row at src, rows `stride`
 * apart): its rows into `rows` (tp x dp) and its transpose into `cols`
 * (64-column blocks), each skipped when NULL. Both passes pack a key block
 * just before its tiles, so that the packing's memory traffic overlaps
 * their products instead of being a phase of its own. */
static void pack_key_block(float *rows, float *cols, const float *src, int64_t stride,
                           const attn_shape *sh, int64_t kb)
{
    int64_t k0 = kb * BLK, nk = tsr_min64(BLK, sh->t - k0);
    if (rows != NULL)
        tsr_attn_pack_rows(rows + k0 * sh->dp, sh->dp, src + k0 * stride, stride, nk, BLK,
                           sh->d, 1.0f);
    if (cols != NULL)
        tsr_attn_pack_cols(cols + k0 * sh->dp, src + k0 * stride, stride, nk, BLK, sh->d,
                           sh->dp);
}

/* The forward's packed keys (kt, transposed) and values (vs), packed as
 * the tiles first reach each key block. */
typedef struct kv_packs {
    float *kt, *vs;
    const float *k, *v; /* the head's first row */
    int64_t stride, packed; /* key blocks [0, packed) are packed */
} kv_packs;

static void kv_packs_need(kv_packs *p, const attn_shape *sh, int64_t kb)
{
    for (; p->packed <= kb; p->packed++) {
        pack_key_block(NULL, p->kt, p->k, p->stride, sh, p->packed);
        pack_key_block(p->vs, NULL, p->v, p->stride, sh, p->packed);
    }
}

/* Query block qb of head h of sample bi: out rows and lse. */
static void forward_block(float *out, float *lse, const float *q, const attn_shape *sh,
                          const tsr_attn_sample *ms, tsr_attn_tile *tile, int64_t bi, int64_t h,
                          int64_t qb, kv_packs *kv, const tsr_dropout *dropout, float *ws)
{
    int64_t dp = sh->dp, d = sh->d, t = sh->t;
    float *qs = ws, *o = qs + BLK * dp, *s = o + BLK * dp, *mask = s + BLK * BLK;
    float *m = mask + BLK * BLK, *l = m + BLK;
    int64_t q0 = qb * BLK, mq = tsr_min64(BLK, t - q0), mq4 = tsr_round_up64(mq, 4);
    int64_t qstride = sh->hq * d;
    tsr_attn_pack_rows(qs, dp, q + (bi * t + q0) * qstride + h * d, qstride, mq, mq4, d,
                       sh->scale);
    for (int64_t i = 0; i < mq4; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    memset(o, 0, (size_t)(mq4 * dp) * sizeof(float));
    const tsr_vf zero = {0};
    tsr_attn_qblock summary;
    tsr_attn_qblock_summarise(&summary, ms, qb);
    for (int64_t kb = 0; kb < sh->nblk; kb++) {
        tsr_attn_tile_resolve(tile, ms, &summary, qb, kb);
        if (tile->empty)
            continue;
        int64_t k0 = kb * BLK, nk = tsr_min64(BLK, t - k0), nk16 = tsr_round_up64(nk, 16);
        kv_packs_need(kv, sh, kb);
        tsr_attn_tile_gemm(s, BLK, qs, dp, 1, kv->kt + k0 * dp, BLK, mq4, nk16, dp, 1,
                           TSR_TILE_N_BOUNDED, tile->row_lo, tile->row_hi);
        for (int64_t i = 0; i < mq4; i++) {
            float *si = s + i * BLK;
            /* only the row group's hull: the P V product reads no more */
            int64_t j0, j1;
            row_span(tile, i, nk16, &j0, &j1);
            tsr_vf mx = zero - INFINITY;
            for (int64_t j = j0; j < j1; j += TSR_VL)
                mx = TSR_VF_MAX(mx, TSR_VF_SELECT(tile_lanes(tile, i, j), TSR_VF_LOAD(si + j),
                                                    zero - INFINITY));
            float m_new = tsr_vf_max(mx);
            m_new = m[i] > m_new ? m[i] : m_new;
            if (m_new == -INFINITY) { /* no key seen yet: nothing to add */
                memset(si, 0, (size_t)nk16 * sizeof(float));
                continue;
            }
            float alpha = tsr_expf(m[i] - m_new);
            tsr_vf sum = zero;
            for (int64_t j = j0; j < j1; j += TSR_VL) {
                tsr_vf p = tsr_expf_v(TSR_VF_LOAD(si + j) - m_new);
                p = TSR_VF_SELECT(tile_lanes(tile, i, j), p, zero);
                sum += p;
                TSR_VF_STORE(si + j, p);
            }
            l[i] = l[i] * alpha + tsr_vf_sum(sum);
            m[i] = m_new;
            if (alpha != 1.0f) {
                float *oi = o + i * dp;
                for (int64_t j = 0; j < dp; j += TSR_VL)
                    TSR_VF_STORE(oi + j, TSR_VF_LOAD(oi + j) * alpha);
            }
        }
        if (dropout_on(dropout)) {
            dropout_tile(mask, dropout, bi, h, q0, mq, mq4, k0, nk16);
            for (int64_t i = 0; i < mq4; i++)
                for (int64_t j = 0; j < nk16; j++)
                    s[i * BLK + j] *= mask[i * BLK + j];
        }
        tsr_attn_tile_gemm(o, dp, s, BLK, 1, kv->vs + k0 * dp, dp, mq4, dp, nk16, 0,
                           TSR_TILE_K_BOUNDED, tile->row_lo, tile->row_hi);
    }
    for (int64_t i = 0; i < mq; i++) {
        /* a query that sees no key: out 0, lse = log(0) = -inf */
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        float *dst = out + ((bi * t + q0 + i) * sh->hq + h) * d;
        for (int64_t j = 0; j < d; j++)
            dst[j] = o[i * dp + j] * inv;
        lse[(bi * sh->hq + h) * t + q0 + i] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
    }
}

static int shape_ok(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d)
{
    return b > 0 && t > 0 && hq > 0 && hkv > 0 && d > 0 && hq % hkv == 0;
}

void tsr_attention_forward(float *out, float *lse, const float *q, const float *k,
                           const float *v, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                           int64_t d, const tsr_attn_mask *mask, const tsr_dropout *dropout,
                           float *scratch)
{
    if (!shape_ok(b, t, hq, hkv, d))
        return;
    attn_shape sh;
    attn_shape_set(&sh, b, t, hq, hkv, d);
    int64_t kstride = hkv * d, r = hq / hkv;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = 0; u < b * hq; u++) {
        int64_t bi = u / hq, h = u % hq, g = h / r;
        tsr_attn_tile *tile = NULL;
        float *ws = thread_scratch(scratch, &sh, &tile);
        /* V is packed although its rows are whole: read in place, rows
         * Hkv * D floats apart share L1 sets, and causal ran 25% slower */
        kv_packs kv = {ws, ws + sh.tp * sh.dp, k + bi * t * kstride + g * d,
                       v + bi * t * kstride + g * d, kstride, 0};
        float *rest = ws + 2 * sh.tp * sh.dp;
        tsr_attn_sample ms;
        tsr_attn_sample_init(&ms, mask, bi, t);
        for (int64_t qb = 0; qb < sh.nblk; qb++)
            forward_block(out, lse, q, &sh, &ms, tile, bi, h, qb, &kv, dropout, rest);
    }
}

/* Packed per-unit buffers of the backward pass (tp rows unless noted). */
typedef struct bwd_buffers {
    float *ks, *kt, *vt; /* kt, vt: dp x 64 blocks (tsr_attn_pack_cols) */
    float *qs, *dos, *dq, *dk, *dv;
    float *p, *ds, *mask; /* BLK x BLK */
    float *lse, *di;      /* tp */
    tsr_attn_qblock *summary; /* nblk */
    tsr_attn_tile *tile;
    tsr_attn_sample sample;
} bwd_buffers;

static bwd_buffers bwd_carve(float *ws, const attn_shape *sh, tsr_attn_tile *tile)
{
    int64_t n = sh->tp * sh->dp;
    bwd_buffers w;
    w.ks = ws;
    w.kt = w.ks + n;
    w.vt = w.kt + n;
    w.qs = w.vt + n;
    w.dos = w.qs + n;
    w.dq = w.dos + n;
    w.dk = w.dq + n;
    w.dv = w.dk + n;
    w.p = w.dv + n;
    w.ds = w.p + BLK * BLK;
    w.mask = w.ds + BLK * BLK;
    w.lse = w.mask + BLK * BLK;
    w.di = w.lse + sh->tp;
    w.summary = (tsr_attn_qblock *)(void *)(w.di + sh->tp);
    w.tile = tile;
    return w;
}

typedef struct bwd_args {
    float *dq, *dk, *dv;
    const float *dout, *q, *k, *v, *out, *lse;
    const tsr_attn_mask *mask;
    const tsr_dropout *dropout;
} bwd_args;

/* Query block qb of head h against key block kb, all operands packed; the
 * tile's mask is resolved. */
static void backward_tile(const bwd_args *a, const attn_shape *sh, bwd_buffers *w, int64_t bi,
                          int64_t h, int64_t qb, int64_t kb)
{
    int64_t dp = sh->dp, t = sh->t;
    int64_t q0 = qb * BLK, mq = tsr_min64(BLK, t - q0), mq4 = tsr_round_up64(mq, 4);
    int64_t k0 = kb * BLK, nk = tsr_min64(BLK, t - k0), nk16 = tsr_round_up64(nk, 16);
    const tsr_attn_tile *tile = w->tile;
    const int16_t *rlo = tile->row_lo, *rhi = tile->row_hi;
    const int16_t *clo = tile->col_lo, *chi = tile->col_hi;
    int drop = dropout_on(a->dropout);
    const float *qs = w->qs + q0 * dp, *dos = w->dos + q0 * dp, *lse = w->lse + q0;
    const float *di = w->di + q0;
    const tsr_vf zero = {0};

    /* P = exp(S - lse) where the mask counts the score, 0 elsewhere */
    tsr_attn_tile_gemm(w->p, BLK, qs, dp, 1, w->kt + k0 * dp, BLK, mq4, nk16, dp, 1,
                       TSR_TILE_N_BOUNDED, rlo, rhi);
    for (int64_t i = 0; i < mq4; i++) {
        float *pi = w->p + i * BLK;
        int64_t j0, j1;
        row_span(tile, i, nk16, &j0, &j1);
        zero_outside(pi, j0, j1, nk16); /* the dV and dK products read whole hulls of columns */
        for (int64_t j = j0; j < j1; j += TSR_VL) {
            tsr_vf e = tsr_expf_v(TSR_VF_LOAD(pi + j) - lse[i]);
            TSR_VF_STORE(pi + j, TSR_VF_SELECT(tile_lanes(tile, i, j), e, zero));
        }
    }
    const float *pv = w->p;
    if (drop) {
        dropout_tile(w->mask, a->dropout, bi, h, q0, mq, mq4, k0, nk16);
        for (int64_t i = 0; i < mq4; i++)
            for (int64_t j = 0; j < nk16; j++)
                w->ds[i * BLK + j] = w->p[i * BLK + j] * w->mask[i * BLK + j];
        pv = w->ds;
    }
    /* dV += Pdrop^T dO */
    if (a->dv != NULL)
        tsr_attn_tile_gemm(w->dv + k0 * dp, dp, pv, 1, BLK, dos, dp, nk16, dp, mq4, 0,
                           TSR_TILE_K_BOUNDED, clo, chi);
    if (a->dq == NULL && a->dk == NULL)
        return;
    /* dP = dO V^T (times the dropout mask); dS = P (dP - Di) */
    tsr_attn_tile_gemm(w->ds, BLK, dos, dp, 1, w->vt + k0 * dp, BLK, mq4, nk16, dp, 1,
                       TSR_TILE_N_BOUNDED, rlo, rhi);
    for (int64_t i = 0; i < mq4; i++) {
        float *pi = w->p + i * BLK, *dsi = w->ds + i * BLK, *mi = w->mask + i * BLK;
        int64_t j0, j1;
        row_span(tile, i, nk16, &j0, &j1);
        zero_outside(dsi, j0, j1, nk16);
        for (int64_t j = j0; j < j1; j += TSR_VL) {
            tsr_vf dpv = TSR_VF_LOAD(dsi + j);
            if (drop)
                dpv *= TSR_VF_LOAD(mi + j);
            tsr_vf dsv = TSR_VF_LOAD(pi + j) * (dpv - di[i]);
            TSR_VF_STORE(dsi + j, TSR_VF_SELECT(tile_lanes(tile, i, j), dsv, zero));
        }
    }
    /* dK += dS^T (q / sqrt(D)); dQ += dS K (times 1/sqrt(D) at write-out) */
    if (a->dk != NULL)
        tsr_attn_tile_gemm(w->dk + k0 * dp, dp, w->ds, 1, BLK, qs, dp, nk16, dp, mq4, 0,
                           TSR_TILE_K_BOUNDED, clo, chi);
    if (a->dq != NULL)
        tsr_attn_tile_gemm(w->dq + q0 * dp, dp, w->ds, BLK, 1, w->ks + k0 * dp, dp, mq4, dp,
                           nk16, 0, TSR_TILE_K_BOUNDED, rlo, rhi);
}

/* sum over j < d of a[j] * b[j], in vectors (Di, one per query row) */
static float row_dot(const float *a, const float *b, int64_t d)
{
    tsr_vf acc = {0};
    int64_t j = 0;
    for (; j + TSR_VL <= d; j += TSR_VL)
        acc += TSR_VF_LOAD(a + j) * TSR_VF_LOAD(b + j);
    float s = tsr_vf_sum(acc);
    for (; j < d; j++)
        s += a[j] * b[j];
    return s;
}

/* adds rows [0, n) of the packed src (ld dp) times mul into the strided dst */
static void unpack_add(float *dst, int64_t stride, const float *src, int64_t dp, int64_t n,
                       int64_t d, float mul)
{
    for (int64_t i = 0; i < n; i++) {
        float *o = dst + i * stride;
        const float *s = src + i * dp;
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            o[j] += s[j] * mul;
    }
}

/* Key/value head g of sample bi: every query head of the group, every key
 * block, every query block whose tile is not empty. */
static void backward_unit(const bwd_args *a, const attn_shape *sh, int64_t bi, int64_t g,
                          float *ws, tsr_attn_tile *tile)
{
    int64_t dp = sh->dp, d = sh->d, t = sh->t, tp = sh->tp, r = sh->hq / sh->hkv;
    int64_t kstride = sh->hkv * d, qstride = sh->hq * d;
    bwd_buffers w = bwd_carve(ws, sh, tile);
    tsr_attn_sample_init(&w.sample, a->mask, bi, t);
    for (int64_t qb = 0; qb < sh->nblk; qb++)
        tsr_attn_qblock_summarise(&w.summary[qb], &w.sample, qb);
    const float *ksrc = a->k + bi * t * kstride + g * d, *vsrc = a->v + bi * t * kstride + g * d;
    float *dkdst = a->dk != NULL ? a->dk + bi * t * kstride + g * d : NULL;
    float *dvdst = a->dv != NULL ? a->dv + bi * t * kstride + g * d : NULL;
    for (int64_t hh = 0; hh < r; hh++) {
        int64_t h = g * r + hh;
        const float *qsrc = a->q + bi * t * qstride + h * d;
        const float *dosrc = a->dout + bi * t * qstride + h * d;
        const float *osrc = a->out + bi * t * qstride + h * d;
        tsr_attn_pack_rows(w.qs, dp, qsrc, qstride, t, tp, d, sh->scale);
        tsr_attn_pack_rows(w.dos, dp, dosrc, qstride, t, tp, d, 1.0f);
        for (int64_t i = 0; i < tp; i++) {
            if (i < t) {
                w.di[i] = row_dot(osrc + i * qstride, w.dos + i * dp, d);
                w.lse[i] = a->lse[(bi * sh->hq + h) * t + i];
            } else {
                w.di[i] = 0.0f;
                w.lse[i] = INFINITY; /* padded rows: P = 0 */
            }
        }
        if (a->dq != NULL)
            memset(w.dq, 0, (size_t)(tp * dp) * sizeof(float));
        for (int64_t kb = 0; kb < sh->nblk; kb++) {
            /* key block kb's dK and dV are zeroed and written out beside
             * its tiles too, as its operands are packed */
            int64_t k0 = kb * BLK, nk = tsr_min64(BLK, t - k0);
            if (hh == 0) {
                pack_key_block(w.ks, w.kt, ksrc, kstride, sh, kb);
                pack_key_block(NULL, w.vt, vsrc, kstride, sh, kb);
                memset(w.dk + k0 * dp, 0, (size_t)(BLK * dp) * sizeof(float));
                memset(w.dv + k0 * dp, 0, (size_t)(BLK * dp) * sizeof(float));
            }
            for (int64_t qb = 0; qb < sh->nblk; qb++) {
                tsr_attn_tile_resolve(w.tile, &w.sample, &w.summary[qb], qb, kb);
                if (!w.tile->empty)
                    backward_tile(a, sh, &w, bi, h, qb, kb);
            }
            if (hh == r - 1 && dkdst != NULL)
                unpack_add(dkdst + k0 * kstride, kstride, w.dk + k0 * dp, dp, nk, d, 1.0f);
            if (hh == r - 1 && dvdst != NULL)
                unpack_add(dvdst + k0 * kstride, kstride, w.dv + k0 * dp, dp, nk, d, 1.0f);
        }
        if (a->dq != NULL)
            unpack_add(a->dq + bi * t * qstride + h * d, qstride, w.dq, dp, t, d, sh->scale);
    }
}

void tsr_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, const float *out,
                            const float *lse, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                            int64_t d, const tsr_attn_mask *mask, const tsr_dropout *dropout,
                            float *scratch)
{
    if (!shape_ok(b, t, hq, hkv, d) || (dq == NULL && dk == NULL && dv == NULL))
        return;
    attn_shape sh;
    attn_shape_set(&sh, b, t, hq, hkv, d);
    bwd_args a = {dq, dk, dv, dout, q, k, v, out, lse, mask, dropout};
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = 0; u < b * hkv; u++) {
        tsr_attn_tile *tile = NULL;
        float *ws = thread_scratch(scratch, &sh, &tile);
        backward_unit(&a, &sh, u / hkv, u % hkv, ws, tile);
    }
}
