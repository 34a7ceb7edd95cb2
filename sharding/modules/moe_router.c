/*
 * moe_router.c - the mixture-of-experts router (moe_internal.h): top-k
 * over the softmax, capacity and token dropping, the balancing and
 * z-losses and the router's backward. What is computed is described at
 * the top of moe.c; everything here is of this rank's own tokens, before
 * any exchange, so no layout changes it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moe_internal.h"
#include "tessera/module.h"

static void softmax_rows(float *p, const float *x, int64_t n, int64_t e)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * e;
        float *pr = p + t * e, max = xr[0];
        for (int64_t i = 1; i < e; i++)
            max = xr[i] > max ? xr[i] : max;
        double sum = 0.0;
        for (int64_t i = 0; i < e; i++)
            sum += pr[i] = expf(xr[i] - max);
        for (int64_t i = 0; i < e; i++)
            pr[i] = (float)(pr[i] / sum);
    }
}

/* The k largest of s (e), ties to the lower index, into idx. */
static void top_k(const float *s, int64_t e, int64_t k, float *idx)
{
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < e; i++) {
            bool taken = false;
            for (int64_t q = 0; q < j && !taken; q++)
                taken = (int64_t)idx[q] == i;
            if (!taken && (best < 0 || s[i] > s[best]))
                best = i;
        }
        idx[j] = (float)best;
    }
}

static void route_top_k(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf)
{
    for (int64_t t = 0; t < d->n; t++) {
        const float *lt = buf[MOE_LOGITS] + t * d->e, *pt = buf[MOE_PROBS] + t * d->e;
        float *idx = buf[MOE_TOP_IDX] + t * d->k, *w = buf[MOE_TOP_W] + t * d->k;
        top_k(cfg->pre_softmax ? pt : lt, d->e, d->k, idx);
        if (cfg->pre_softmax) {
            for (int64_t j = 0; j < d->k; j++)
                w[j] = pt[(int64_t)idx[j]];
            continue;
        }
        float max = lt[(int64_t)idx[0]];
        double sum = 0.0;
        for (int64_t j = 0; j < d->k; j++)
            sum += w[j] = expf(lt[(int64_t)idx[j]] - max);
        for (int64_t j = 0; j < d->k; j++)
            w[j] = (float)(w[j] / sum);
    }
}

static const float *sort_idx, *sort_w; /* qsort has no context argument */

/* by expert, then by weight (descending), then in token order */
static int by_expert_weight(const void *pa, const void *pb)
{
    int64_t a = (int64_t) * (const float *)pa, b = (int64_t) * (const float *)pb;
    if (sort_idx[a] != sort_idx[b])
        return sort_idx[a] < sort_idx[b] ? -1 : 1;
    if (sort_w[a] != sort_w[b])
        return sort_w[a] > sort_w[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

int64_t tsr_moe_capacity(const tsr_moe_config *cfg, int64_t assignments)
{
    int64_t cap = (int64_t)ceil(cfg->capacity * (double)assignments / (double)cfg->experts);
    return cap < 1 ? 1 : cap;
}

/* Marks the assignments over their expert's capacity as dropped (slot
 * -1; the others 0 for now): n tokens' idx, w and slot (n, k); order (n
 * k) and seen (E) are scratch. */
static void drop_over_capacity(const tsr_moe_config *cfg, const moe_dims *d, int64_t n,
                               const float *idx, const float *w, float *slot, float *order,
                               float *seen)
{
    int64_t na = n * d->k;
    for (int64_t a = 0; a < na; a++)
        slot[a] = 0.0f;
    int64_t cap = tsr_moe_capacity(cfg, na);
    memset(seen, 0, (size_t)d->e * sizeof *seen);
    if (!cfg->drop_by_position) { /* the most probable first */
        for (int64_t a = 0; a < na; a++)
            order[a] = (float)a;
        sort_idx = idx;
        sort_w = w;
        qsort(order, (size_t)na, sizeof *order, by_expert_weight);
    }
    for (int64_t r = 0; r < na; r++) {
        int64_t a = cfg->drop_by_position ? r : (int64_t)order[r], i = (int64_t)idx[a];
        if (seen[i] >= (float)cap)
            slot[a] = -1.0f;
        seen[i] += 1.0f;
    }
}

/* The drops of this rank's rows, decided over the whole micro batch:
 * under sequence parallelism the routing of every rank's rows is
 * gathered first, so that every layout drops the same assignments. */
static tsr_status drop(const tsr_module_run *run, const tsr_moe_config *cfg, const moe_dims *d,
                       float *const *buf, bool decoding)
{
    if (!(cfg->capacity > 0.0) || decoding) {
        for (int64_t a = 0; a < d->n * d->k; a++)
            buf[MOE_SLOT][a] = 0.0f;
        return TSR_OK;
    }
    if (d->split <= 1) {
        drop_over_capacity(cfg, d, d->n, buf[MOE_TOP_IDX], buf[MOE_TOP_W], buf[MOE_SLOT],
                           buf[MOE_D_W], buf[MOE_CURSOR]); /* D_W: free in forward */
        return TSR_OK;
    }
    float *idx = buf[MOE_FULL_IDX], *w = buf[MOE_FULL_W], *slot = buf[MOE_FULL_SLOT];
    tsr_status st = tsr_module_tp_gather_rows(run, idx, buf[MOE_TOP_IDX], d->k);
    if (st == TSR_OK)
        st = tsr_module_tp_gather_rows(run, w, buf[MOE_TOP_W], d->k);
    if (st != TSR_OK)
        return st;
    drop_over_capacity(cfg, d, d->n_all, idx, w, slot, buf[MOE_FULL_ORDER], buf[MOE_CURSOR]);
    /* local (B, T/tp) rows are rows tp_rank T/tp .. of each sequence */
    for (int64_t b = 0; b < d->b; b++)
        memcpy(buf[MOE_SLOT] + b * d->t * d->k,
               slot + (b * d->t_all + d->split_rank * d->t) * d->k,
               (size_t)(d->t * d->k) * sizeof(float));
    return TSR_OK;
}

static bool balancing(const tsr_moe_config *cfg)
{
    return cfg->aux_coeff > 0.0f && cfg->balancing != TSR_MOE_NO_BALANCING;
}

/* Groups the balancing loss averages over, and the tokens in each (of the
 * whole micro batch, every rank's rows). */
static int64_t groups_of(const tsr_moe_config *cfg, const moe_dims *d, int64_t *rows_all)
{
    bool per_seq = cfg->balancing == TSR_MOE_SEQ_AUX_LOSS;
    *rows_all = per_seq ? d->t_all : d->n_all;
    return per_seq ? d->b : 1;
}

static double logsumexp(const float *x, int64_t e)
{
    float max = x[0];
    for (int64_t i = 1; i < e; i++)
        max = x[i] > max ? x[i] : max;
    double s = 0.0;
    for (int64_t i = 0; i < e; i++)
        s += exp((double)x[i] - max);
    return max + log(s);
}

/* buf[MOE_STATS]: per group and expert the sum of p and the assignment
 * count, then the sum of logsumexp^2, over the whole micro batch (summed
 * over the ranks that split its rows). */
static tsr_status loss_statistics(const tsr_module_run *run, const tsr_moe_config *cfg,
                                  const moe_dims *d, float *const *buf)
{
    int64_t rows_all = 0, groups = groups_of(cfg, d, &rows_all), rows = d->n / groups;
    float *psum = buf[MOE_STATS], *fcnt = psum + groups * d->e, *zsum = fcnt + groups * d->e;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t i = 0; i < d->e; i++) {
            double p = 0.0, f = 0.0;
            for (int64_t t = g * rows; t < (g + 1) * rows; t++) {
                p += buf[MOE_PROBS][t * d->e + i];
                for (int64_t j = 0; j < d->k; j++)
                    f += (int64_t)buf[MOE_TOP_IDX][t * d->k + j] == i;
            }
            psum[g * d->e + i] = (float)p;
            fcnt[g * d->e + i] = (float)f;
        }
    double z = 0.0;
    for (int64_t t = 0; cfg->z_coeff > 0.0f && t < d->n; t++) {
        double lse = logsumexp(buf[MOE_LOGITS] + t * d->e, d->e);
        z += lse * lse;
    }
    *zsum = (float)z;
    if (d->split <= 1)
        return TSR_OK;
    return tsr_module_tp_sum(run, psum, 2 * groups * d->e + 1);
}

tsr_status tsr_moe_route(const tsr_module_run *run, const tsr_moe_config *cfg, const moe_dims *d,
                         float *const *buf, bool decoding)
{
    softmax_rows(buf[MOE_PROBS], buf[MOE_LOGITS], d->n, d->e);
    route_top_k(cfg, d, buf);
    tsr_status st = drop(run, cfg, d, buf, decoding);
    if (st == TSR_OK && run->train && !decoding && (balancing(cfg) || cfg->z_coeff > 0.0f))
        st = loss_statistics(run, cfg, d, buf);
    return st;
}

double tsr_moe_loss_terms(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf)
{
    int64_t rows_all = 0, groups = groups_of(cfg, d, &rows_all);
    const float *psum = buf[MOE_STATS], *fcnt = psum + groups * d->e;
    double z = cfg->z_coeff > 0.0f ? cfg->z_coeff * (double)fcnt[groups * d->e] / (double)d->n_all
                                   : 0.0;
    double aux = 0.0;
    if (balancing(cfg)) {
        for (int64_t g = 0; g < groups * d->e; g++)
            aux += ((double)psum[g] / (double)rows_all) *
                   ((double)fcnt[g] / (double)(rows_all * d->k));
        aux = cfg->aux_coeff * (double)d->e * aux / (double)groups;
    }
    return aux + z;
}

/* d loss / d probs of the balancing loss, times the micro batch's scale:
 * the whole micro batch's counts f (a count passes no gradient). */
static void balancing_grad(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                           float scale)
{
    if (!balancing(cfg))
        return;
    int64_t rows_all = 0, groups = groups_of(cfg, d, &rows_all), rows = d->n / groups;
    const float *fcnt = buf[MOE_STATS] + groups * d->e;
    /* aux = coeff E / groups * sum_i (sum_t p_ti / rows) (f_i / (rows k)) */
    double c = (double)cfg->aux_coeff * (double)d->e / (double)groups /
               ((double)rows_all * (double)rows_all * (double)d->k) * scale;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t t = g * rows; t < (g + 1) * rows; t++)
            for (int64_t i = 0; i < d->e; i++)
                buf[MOE_D_PROBS][t * d->e + i] += (float)(c * fcnt[g * d->e + i]);
}

void tsr_moe_router_backward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                            float scale)
{
    memset(buf[MOE_D_PROBS], 0, (size_t)(d->n * d->e) * sizeof(float));
    memset(buf[MOE_D_LOGITS], 0, (size_t)(d->n * d->e) * sizeof(float));
    for (int64_t t = 0; t < d->n; t++) {
        const float *idx = buf[MOE_TOP_IDX] + t * d->k, *wt = buf[MOE_TOP_W] + t * d->k;
        const float *dw = buf[MOE_D_W] + t * d->k;
        if (cfg->pre_softmax) {
            for (int64_t j = 0; j < d->k; j++)
                buf[MOE_D_PROBS][t * d->e + (int64_t)idx[j]] += dw[j];
            continue;
        }
        /* w = softmax over the chosen logits */
        float s = 0.0f;
        for (int64_t j = 0; j < d->k; j++)
            s += wt[j] * dw[j];
        for (int64_t j = 0; j < d->k; j++)
            buf[MOE_D_LOGITS][t * d->e + (int64_t)idx[j]] += wt[j] * (dw[j] - s);
    }
    balancing_grad(cfg, d, buf, scale);
    double zc = 2.0 * (double)cfg->z_coeff / (double)d->n_all * scale;
    for (int64_t t = 0; t < d->n; t++) {
        const float *p = buf[MOE_PROBS] + t * d->e, *dp = buf[MOE_D_PROBS] + t * d->e;
        const float *lt = buf[MOE_LOGITS] + t * d->e;
        float *dl = buf[MOE_D_LOGITS] + t * d->e;
        double dot = 0.0;
        for (int64_t i = 0; i < d->e; i++)
            dot += (double)p[i] * dp[i];
        double lse = 0.0;
        if (cfg->z_coeff > 0.0f) { /* logsumexp = logit - log p, for any expert */
            lse = (double)lt[0] - log((double)p[0]);
            for (int64_t i = 1; i < d->e; i++)
                if (p[i] > p[0])
                    lse = (double)lt[i] - log((double)p[i]);
        }
        for (int64_t i = 0; i < d->e; i++)
            dl[i] += (float)((double)p[i] * ((double)dp[i] - dot) + zc * lse * (double)p[i]);
    }
}
