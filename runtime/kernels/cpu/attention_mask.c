/*
 * attention_mask.c - the rules of tsr_attn_mask, per element and per tile
 * (see attention_mask.h), the pattern checks and the count of computed
 * score elements that the FLOPs in the log are made of.
 */
#include "attention_mask.h"

#include <string.h>

#include "tessera/status.h"

static const tsr_attn_mask causal_mask = {TSR_ATTN_CAUSAL, 0, 0, 0, NULL, NULL, NULL};

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int is_sparse(const tsr_attn_mask *m)
{
    return m->pattern == TSR_ATTN_FIXED || m->pattern == TSR_ATTN_STRIDED;
}

void tsr_attn_sample_init(tsr_attn_sample *s, const tsr_attn_mask *mask, int64_t sample,
                          int64_t t)
{
    s->mask = mask != NULL ? mask : &causal_mask;
    s->t = t;
    const tsr_attn_mask *m = s->mask;
    s->doc_start = m->doc_start != NULL ? m->doc_start + sample * t : NULL;
    int prefix = m->prefix_lo != NULL && m->prefix_hi != NULL;
    s->prefix_lo = prefix ? m->prefix_lo + sample * t : NULL;
    s->prefix_hi = prefix ? m->prefix_hi + sample * t : NULL;
}

/* Query i's causal part starts at *c0 (empty when *c0 > i); its
 * bidirectional part is [*p0, *p1) (empty when *p0 >= *p1). */
static void row_parts(const tsr_attn_sample *s, int64_t i, int64_t *c0, int64_t *p0, int64_t *p1)
{
    int64_t start = s->doc_start != NULL ? s->doc_start[i] : 0;
    if (s->mask->pattern == TSR_ATTN_WINDOW)
        start = max64(start, i - s->mask->window + 1);
    *c0 = max64(start, 0);
    *p0 = 0;
    *p1 = 0;
    if (s->prefix_lo != NULL) {
        *p0 = max64(s->prefix_lo[i], 0);
        *p1 = tsr_min64(s->prefix_hi[i], s->t);
    }
}

/* The sparse patterns between query block qi and key block kj (qi >= kj). */
static int blocks_see(const tsr_attn_mask *m, int64_t qi, int64_t kj)
{
    int64_t l = m->stride / m->block;
    if (m->pattern == TSR_ATTN_FIXED)
        return qi / l == kj / l || kj % l == l - 1;
    return qi - kj < l || (qi - kj) % l == 0;
}

int tsr_attn_pattern_sees(const tsr_attn_mask *mask, int64_t i, int64_t j)
{
    const tsr_attn_mask *m = mask != NULL ? mask : &causal_mask;
    if (j > i || j < 0)
        return 0;
    if (m->pattern == TSR_ATTN_WINDOW)
        return i - j < m->window;
    if (is_sparse(m))
        return blocks_see(m, i / m->block, j / m->block);
    return 1;
}

void tsr_attn_qblock_summarise(tsr_attn_qblock *qb, const tsr_attn_sample *s, int64_t block)
{
    int64_t q0 = block * TSR_ATTN_BLK, q1 = tsr_min64(q0 + TSR_ATTN_BLK, s->t);
    qb->lo = s->t;
    qb->hi = 0;
    qb->bidir = 0;
    qb->gap = 0;
    for (int64_t i = q0; i < q1; i++) {
        int64_t c0, p0, p1;
        row_parts(s, i, &c0, &p0, &p1);
        int causal = c0 <= i, bidir = p0 < p1;
        if (causal) {
            qb->lo = tsr_min64(qb->lo, c0);
            qb->hi = max64(qb->hi, i + 1);
        }
        if (bidir) {
            qb->lo = tsr_min64(qb->lo, p0);
            qb->hi = max64(qb->hi, p1);
            qb->bidir = 1;
        }
        if (causal && bidir && (p0 > i + 1 || p1 < c0))
            qb->gap = 1;
    }
}

/* Starts the hulls of a tile: every group empty. */
static void hulls_clear(tsr_attn_tile *tile)
{
    for (int g = 0; g < TSR_ATTN_BLK / 4; g++) {
        tile->row_lo[g] = tile->col_lo[g] = TSR_ATTN_BLK;
        tile->row_hi[g] = tile->col_hi[g] = 0;
    }
}

/* Row r counts the columns [c0, c1) (c1 > c0). */
static void hulls_add(tsr_attn_tile *tile, int64_t r, int64_t c0, int64_t c1)
{
    int g = (int)(r / 4);
    if (c0 < tile->row_lo[g])
        tile->row_lo[g] = (int16_t)c0;
    if (c1 > tile->row_hi[g])
        tile->row_hi[g] = (int16_t)c1;
    for (int64_t cg = c0 / 4; cg <= (c1 - 1) / 4; cg++) {
        if (r < tile->col_lo[cg])
            tile->col_lo[cg] = (int16_t)r;
        if (r + 1 > tile->col_hi[cg])
            tile->col_hi[cg] = (int16_t)(r + 1);
    }
}

static void hulls_close(tsr_attn_tile *tile)
{
    for (int g = 0; g < TSR_ATTN_BLK / 4; g++) {
        if (tile->row_hi[g] <= tile->row_lo[g])
            tile->row_lo[g] = tile->row_hi[g] = 0;
        if (tile->col_hi[g] <= tile->col_lo[g])
            tile->col_lo[g] = tile->col_hi[g] = 0;
    }
}

/* One flag per element, for the tiles the ranges cannot describe. The
 * pattern is decided once per key block of the row, not per element. */
static void resolve_elements(tsr_attn_tile *tile, const tsr_attn_sample *s, int64_t q0,
                             int64_t mq, int64_t k0, int64_t nk)
{
    const tsr_attn_mask *m = s->mask;
    int sparse = is_sparse(m), any = 0;
    memset(tile->el, 0, sizeof tile->el);
    for (int64_t r = 0; r < mq; r++) {
        int64_t i = q0 + r, c0, p0, p1;
        row_parts(s, i, &c0, &p0, &p1);
        int32_t *row = tile->el + r * TSR_ATTN_BLK;
        int64_t first = -1, last = -1;
        for (int64_t c = 0; c < nk;) {
            int64_t j = k0 + c;
            /* columns up to the end of j's key block share the pattern */
            int64_t run_end = sparse ? tsr_min64(nk, (j / m->block + 1) * m->block - k0) : nk;
            int on_pattern = !sparse || j > i || blocks_see(m, i / m->block, j / m->block);
            for (; c < run_end; c++, j++) {
                int on = (j >= p0 && j < p1) || (on_pattern && j >= c0 && j <= i);
                row[c] = on ? -1 : 0;
                if (on) {
                    if (first < 0)
                        first = c;
                    last = c;
                }
            }
        }
        if (first >= 0) {
            any = 1;
            hulls_add(tile, r, first, last + 1);
        }
    }
    tile->empty = !any;
    tile->elements = 1;
}

/* Sparse blocks smaller than a tile: no pair of the tile's query and key
 * blocks sees the other (and no row has a prefix here): the tile is empty. */
static int sparse_tile_empty(const tsr_attn_mask *m, int64_t q0, int64_t mq, int64_t k0,
                             int64_t nk)
{
    for (int64_t qi = q0 / m->block; qi <= (q0 + mq - 1) / m->block; qi++)
        for (int64_t kj = k0 / m->block; kj <= (k0 + nk - 1) / m->block && kj <= qi; kj++)
            if (blocks_see(m, qi, kj))
                return 0;
    return 1;
}

void tsr_attn_tile_resolve(tsr_attn_tile *tile, const tsr_attn_sample *s,
                           const tsr_attn_qblock *summary, int64_t qb, int64_t kb)
{
    const tsr_attn_mask *m = s->mask;
    int64_t q0 = qb * TSR_ATTN_BLK, mq = tsr_min64(TSR_ATTN_BLK, s->t - q0);
    int64_t k0 = kb * TSR_ATTN_BLK, nk = tsr_min64(TSR_ATTN_BLK, s->t - k0), k1 = k0 + nk;
    tile->empty = 1;
    tile->elements = 0;
    if (summary->hi <= k0 || summary->lo >= k1)
        return;
    /* a sparse block that is a multiple of the tile holds the whole tile:
     * the pattern is one answer for all of it */
    int sparse = is_sparse(m), uniform = sparse && m->block % TSR_ATTN_BLK == 0;
    int pattern_on = 1;
    if (uniform && q0 >= k0)
        pattern_on = blocks_see(m, q0 / m->block, k0 / m->block);
    if (uniform && !pattern_on && !summary->bidir)
        return;
    if (sparse && !uniform && !summary->bidir && m->block >= 8 &&
        sparse_tile_empty(m, q0, mq, k0, nk))
        return;
    hulls_clear(tile);
    if ((sparse && !uniform) || summary->gap) {
        resolve_elements(tile, s, q0, mq, k0, nk);
        hulls_close(tile);
        return;
    }
    int any = 0;
    for (int64_t r = 0; r < TSR_ATTN_BLK; r++) {
        int64_t u0 = 0, u1 = 0;
        if (r < mq) {
            int64_t i = q0 + r, c0, p0, p1;
            row_parts(s, i, &c0, &p0, &p1);
            int64_t a0 = max64(c0, k0), a1 = pattern_on ? tsr_min64(i + 1, k1) : a0;
            int64_t b0 = max64(p0, k0), b1 = tsr_min64(p1, k1);
            int a = a0 < a1, b = b0 < b1;
            /* no gap: two parts that are both here overlap or touch */
            u0 = a && b ? tsr_min64(a0, b0) : a ? a0 : b ? b0 : 0;
            u1 = a && b ? max64(a1, b1) : a ? a1 : b ? b1 : 0;
        }
        int on = u1 > u0;
        tile->lo[r] = on ? (float)(u0 - k0) : 0.0f;
        tile->hi[r] = on ? (float)(u1 - k0) : 0.0f;
        if (on) {
            any = 1;
            hulls_add(tile, r, u0 - k0, u1 - k0);
        }
    }
    hulls_close(tile);
    tile->empty = !any;
}

tsr_status tsr_attention_mask_check(const tsr_attn_mask *m, int64_t t)
{
    if (m == NULL || m->pattern == TSR_ATTN_CAUSAL)
        return TSR_OK;
    if (m->pattern == TSR_ATTN_WINDOW) {
        if (m->window < 1 || m->window > t)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--window-size %lld must be from 1 to the sequence length "
                                 "%lld (a window of the whole sequence is causal attention)",
                                 (long long)m->window, (long long)t);
        return TSR_OK;
    }
    if (m->pattern != TSR_ATTN_FIXED && m->pattern != TSR_ATTN_STRIDED)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "unknown attention pattern %d",
                             (int)m->pattern);
    if (m->block < 1 || t % m->block != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--sparse-block %lld does not divide the sequence length %lld; "
                             "choose a block size that does (64 or a multiple of it skips "
                             "whole tiles)",
                             (long long)m->block, (long long)t);
    if (m->stride < m->block || m->stride % m->block != 0 || m->stride > t)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--sparse-stride %lld must be a multiple of --sparse-block %lld "
                             "and at most the sequence length %lld",
                             (long long)m->stride, (long long)m->block, (long long)t);
    return TSR_OK;
}

double tsr_attention_computed_elements(const tsr_attn_mask *mask, int64_t t)
{
    tsr_attn_mask pattern = mask != NULL ? *mask : causal_mask;
    pattern.doc_start = pattern.prefix_lo = pattern.prefix_hi = NULL;
    if (t <= 0 || tsr_attention_mask_check(&pattern, t) != TSR_OK)
        return 0.0;
    int64_t nblk = (t + TSR_ATTN_BLK - 1) / TSR_ATTN_BLK;
    double elements = 0.0;
    if (pattern.pattern == TSR_ATTN_CAUSAL) {
        /* the tiles on and below the diagonal, without resolving each
         * (planners ask this for every layout) */
        for (int64_t qb = 0; qb < nblk; qb++)
            elements += (double)tsr_min64(TSR_ATTN_BLK, t - qb * TSR_ATTN_BLK) *
                        (double)tsr_min64((qb + 1) * TSR_ATTN_BLK, t);
        return elements;
    }
    tsr_attn_sample s;
    tsr_attn_sample_init(&s, &pattern, 0, t);
    tsr_attn_tile tile;
    for (int64_t qb = 0; qb < nblk; qb++) {
        tsr_attn_qblock summary;
        tsr_attn_qblock_summarise(&summary, &s, qb);
        for (int64_t kb = 0; kb < nblk; kb++) {
            tsr_attn_tile_resolve(&tile, &s, &summary, qb, kb);
            if (!tile.empty)
                elements += (double)tsr_min64(TSR_ATTN_BLK, t - qb * TSR_ATTN_BLK) *
                            (double)tsr_min64(TSR_ATTN_BLK, t - kb * TSR_ATTN_BLK);
        }
    }
    return elements;
}
