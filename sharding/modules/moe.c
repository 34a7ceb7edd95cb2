/*
 * moe.c - the mixture-of-experts MLP (modules.h, tsr_moe_config). Local
 * rows (C) -> local rows (C); this build keeps every expert on every rank.
 *
 * Router: logits = x Wr^T (n, E), p = softmax(logits). Each token takes
 * the k largest logits (ties to the lower expert), weighted by the
 * softmax over those k (Mixtral), or with pre_softmax the k largest p,
 * weighted by p itself. Dispatch: the (token, choice) assignments are
 * sorted by expert with a counting sort (stable in token order), so each
 * expert's rows are contiguous and it runs as one GEMM pair; slot[t, j]
 * is where assignment (t, j) landed. Combine: out[t] = sum_j w[t, j]
 * y[slot[t, j]] (+ the shared expert's output).
 *
 * Capacity (capacity > 0): each expert takes at most ceil(capacity * n *
 * k / E) of the micro batch's n tokens' assignments, counted over the
 * whole micro batch (the same tokens in every layout, so the same drops);
 * over it, the most probable assignments are kept (ties to the earlier
 * token), or with drop_by_position the first in token order. A dropped
 * assignment adds nothing to its token's output; the token keeps its
 * other choices and the residual. Generation steps drop nothing.
 *
 * Loss terms of the module, from the router's probabilities and
 * assignments before any dropping: aux_loss = coeff * E *
 * sum_i P_i f_i with P_i the mean of p[., i] and f_i the share of the n*k
 * assignments that chose i (Switch / GShard, as Megatron's
 * switch_load_balancing_loss_func); seq_aux_loss the same per sequence,
 * averaged over the micro batch's sequences; z-loss = coeff * mean_t
 * logsumexp(logits_t)^2 (ST-MoE). Their gradients reach the router
 * logits in backward, scaled by the micro batch's loss_scale like the
 * head's; f is a count and passes none.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { ROUTER, FC1, FC2, SHARED_FC1, SHARED_FC2 };
enum {
    LOGITS,
    PROBS,
    TOP_IDX,
    TOP_W,
    SLOT,
    COUNTS,
    X_PERM,
    H,
    ACT,
    Y,
    SH_H,
    SH_ACT, /* saved */
    D_Y,
    D_ACT,
    D_H,
    D_XPERM,
    D_W,
    D_LOGITS,
    D_PROBS,
    SH_DACT,
    SH_DH,
    CURSOR /* scratch */
};

typedef struct dims {
    int64_t n, c, e, k, f, f1, fs, fs1, b, t;
} dims;

static dims dims_of(const tsr_module_run *run)
{
    const tsr_module_info *info = run->info;
    const tsr_moe_config *cfg = info->config;
    dims d;
    d.n = tsr_module_rows(run, TSR_ROWS_TOKENS);
    d.c = info->hidden;
    d.e = cfg->experts;
    d.k = cfg->topk;
    d.f = cfg->ffn;
    d.f1 = cfg->swiglu ? 2 * cfg->ffn : cfg->ffn;
    d.fs = cfg->shared_ffn;
    d.fs1 = cfg->swiglu ? 2 * cfg->shared_ffn : cfg->shared_ffn;
    d.t = run->io->decode_position >= 0 ? 1 : info->seq;
    d.b = d.n / d.t;
    return d;
}

static tsr_status moe_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_moe_config *cfg = info->config;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_moe_config");
    if (info->in_rows != TSR_ROWS_LOCAL || info->in_cols != info->hidden)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "reads the residual stream");
    if (info->tp_size > 1 || info->sequence_parallel)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "MoE layers run every expert on every rank in this build: tensor "
                             "and sequence parallelism (and expert parallelism) are not built "
                             "for them yet; use data and pipeline parallelism");
    if (cfg->experts < 1 || cfg->topk < 1 || cfg->topk > cfg->experts || cfg->ffn < 1 ||
        cfg->shared_ffn < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%lld experts, top-%lld, width %lld: need 1 <= k <= experts and a "
                             "positive width",
                             (long long)cfg->experts, (long long)cfg->topk, (long long)cfg->ffn);
    int64_t n = info->micro_batch * info->seq, c = info->hidden, e = cfg->experts;
    int64_t k = cfg->topk, f = cfg->ffn, f1 = cfg->swiglu ? 2 * f : f;
    int64_t fs = cfg->shared_ffn, fs1 = cfg->swiglu ? 2 * fs : fs;
    if (n * k >= (int64_t)1 << 24)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%lld tokens x top-%lld assignments per micro batch: the router "
                             "keeps slots below 2^24; use a smaller micro batch",
                             (long long)n, (long long)k);
    bool shared = fs > 0;
    tsr_decl_param(decl, true, "router.weight", e, c, TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL,
                   cfg->init_std, TSR_PARAM_DECAY);
    /* expert i's rows are [i * f1, (i + 1) * f1) (under SwiGLU its gate
     * then its up rows) and [i * c, (i + 1) * c) */
    tsr_decl_experts(decl,
                     tsr_decl_param(decl, true, "experts.linear_fc1.weight", e * f1, c,
                                    TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->init_std,
                                    TSR_PARAM_DECAY),
                     e);
    tsr_decl_experts(decl,
                     tsr_decl_param(decl, true, "experts.linear_fc2.weight", e * c, f,
                                    TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->out_init_std,
                                    TSR_PARAM_DECAY),
                     e);
    tsr_decl_param(decl, shared, "shared_experts.linear_fc1.weight", shared ? fs1 : 1, c,
                   TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->init_std, TSR_PARAM_DECAY);
    tsr_decl_param(decl, shared, "shared_experts.linear_fc2.weight", c, shared ? fs : 1,
                   TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->out_init_std, TSR_PARAM_DECAY);
    tsr_buffer_life S = TSR_BUFFER_SAVED, X = TSR_BUFFER_SCRATCH;
    tsr_buffer_rows R = TSR_ROWS_TOKENS;
    tsr_decl_buffer(decl, true, "logits", R, e, S);
    tsr_decl_buffer(decl, true, "probs", R, e, S);
    tsr_decl_buffer(decl, true, "top_idx", R, k, S);
    tsr_decl_buffer(decl, true, "top_w", R, k, S);
    tsr_decl_buffer(decl, true, "slot", R, k, S);
    tsr_decl_buffer(decl, true, "counts", TSR_ROWS_FIXED, e, S);
    tsr_decl_buffer(decl, true, "x_perm", R, k * c, S);
    tsr_decl_buffer(decl, true, "h", R, k * f1, S);
    tsr_decl_buffer(decl, true, "act", R, k * f, S);
    tsr_decl_buffer(decl, true, "y", R, k * c, S);
    tsr_decl_buffer(decl, shared, "shared_h", R, shared ? fs1 : 1, S);
    tsr_decl_buffer(decl, shared, "shared_act", R, shared ? fs : 1, S);
    tsr_decl_buffer(decl, true, "d_y", R, k * c, X);
    tsr_decl_buffer(decl, true, "d_act", R, k * f, X);
    tsr_decl_buffer(decl, true, "d_h", R, k * f1, X);
    tsr_decl_buffer(decl, true, "d_x_perm", R, k * c, X);
    tsr_decl_buffer(decl, true, "d_w", R, k, X);
    tsr_decl_buffer(decl, true, "d_logits", R, e, X);
    tsr_decl_buffer(decl, true, "d_probs", R, e, X);
    tsr_decl_buffer(decl, shared, "shared_d_act", R, shared ? fs : 1, X);
    tsr_decl_buffer(decl, shared, "shared_d_h", R, shared ? fs1 : 1, X);
    tsr_decl_buffer(decl, true, "cursor", TSR_ROWS_FIXED, e, X);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = c;
    decl->keeps_input = true;
    decl->decodes = true; /* row-wise */
    return TSR_OK;
}

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

static void route(const tsr_moe_config *cfg, const dims *d, float *const *buf)
{
    for (int64_t t = 0; t < d->n; t++) {
        const float *lt = buf[LOGITS] + t * d->e, *pt = buf[PROBS] + t * d->e;
        float *idx = buf[TOP_IDX] + t * d->k, *w = buf[TOP_W] + t * d->k;
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

/* Marks the assignments over their expert's capacity as dropped (slot
 * -1; the others 0 for now). */
static void drop_over_capacity(const tsr_moe_config *cfg, const dims *d, float *const *buf,
                               bool decoding)
{
    int64_t na = d->n * d->k;
    for (int64_t a = 0; a < na; a++)
        buf[SLOT][a] = 0.0f;
    if (!(cfg->capacity > 0.0) || decoding)
        return;
    int64_t cap = (int64_t)ceil(cfg->capacity * (double)na / (double)d->e);
    cap = cap < 1 ? 1 : cap;
    float *seen = buf[CURSOR];
    memset(seen, 0, (size_t)d->e * sizeof *seen);
    if (cfg->drop_by_position) {
        for (int64_t a = 0; a < na; a++) {
            int64_t i = (int64_t)buf[TOP_IDX][a];
            if (seen[i] >= (float)cap)
                buf[SLOT][a] = -1.0f;
            seen[i] += 1.0f;
        }
        return;
    }
    float *order = buf[D_W]; /* free in forward */
    for (int64_t a = 0; a < na; a++)
        order[a] = (float)a;
    sort_idx = buf[TOP_IDX];
    sort_w = buf[TOP_W];
    qsort(order, (size_t)na, sizeof *order, by_expert_weight);
    for (int64_t r = 0; r < na; r++) {
        int64_t a = (int64_t)order[r], i = (int64_t)buf[TOP_IDX][a];
        if (seen[i] >= (float)cap)
            buf[SLOT][a] = -1.0f;
        seen[i] += 1.0f;
    }
}

/* Counting sort of the kept assignments by expert: counts, and slot[t, j]
 * (-1 stays for the dropped). */
static void dispatch(const dims *d, float *const *buf, const float *x)
{
    float *counts = buf[COUNTS], *cursor = buf[CURSOR];
    memset(counts, 0, (size_t)d->e * sizeof *counts);
    for (int64_t a = 0; a < d->n * d->k; a++)
        if (buf[SLOT][a] >= 0.0f)
            counts[(int64_t)buf[TOP_IDX][a]] += 1.0f;
    float start = 0.0f;
    for (int64_t i = 0; i < d->e; i++) {
        cursor[i] = start;
        start += counts[i];
    }
    for (int64_t a = 0; a < d->n * d->k; a++) {
        if (buf[SLOT][a] < 0.0f)
            continue;
        int64_t i = (int64_t)buf[TOP_IDX][a], s = (int64_t)cursor[i];
        cursor[i] += 1.0f;
        buf[SLOT][a] = (float)s;
        memcpy(buf[X_PERM] + s * d->c, x + (a / d->k) * d->c, (size_t)d->c * sizeof(float));
    }
}

static void expert_forward(const tsr_moe_config *cfg, const dims *d, float *const *buf,
                           float *const *w)
{
    int64_t first = 0;
    for (int64_t i = 0; i < d->e; i++) {
        int64_t m = (int64_t)buf[COUNTS][i];
        if (m > 0) {
            tsr_linear_forward(buf[H] + first * d->f1, buf[X_PERM] + first * d->c,
                               w[FC1] + i * d->f1 * d->c, NULL, m, d->c, d->f1);
            if (cfg->swiglu)
                tsr_swiglu_forward(buf[ACT] + first * d->f, buf[H] + first * d->f1, m, d->f);
            else
                tsr_gelu_forward(buf[ACT] + first * d->f, buf[H] + first * d->f1, m * d->f);
            tsr_linear_forward(buf[Y] + first * d->c, buf[ACT] + first * d->f,
                               w[FC2] + i * d->c * d->f, NULL, m, d->f, d->c);
        }
        first += m;
    }
}

/* The module's loss terms of the micro batch (see the top). */
static double loss_terms(const tsr_moe_config *cfg, const dims *d, float *const *buf)
{
    double z = 0.0, aux = 0.0;
    if (cfg->z_coeff > 0.0f) {
        for (int64_t t = 0; t < d->n; t++) {
            const float *lt = buf[LOGITS] + t * d->e;
            float max = lt[0];
            for (int64_t i = 1; i < d->e; i++)
                max = lt[i] > max ? lt[i] : max;
            double s = 0.0;
            for (int64_t i = 0; i < d->e; i++)
                s += exp((double)lt[i] - max);
            double lse = max + log(s);
            z += lse * lse;
        }
        z = cfg->z_coeff * z / (double)d->n;
    }
    if (cfg->aux_coeff > 0.0f && cfg->balancing != TSR_MOE_NO_BALANCING) {
        bool per_seq = cfg->balancing == TSR_MOE_SEQ_AUX_LOSS;
        int64_t groups = per_seq ? d->b : 1, rows = d->n / groups;
        for (int64_t g = 0; g < groups; g++)
            for (int64_t i = 0; i < d->e; i++) {
                double p = 0.0, f = 0.0;
                for (int64_t t = g * rows; t < (g + 1) * rows; t++) {
                    p += buf[PROBS][t * d->e + i];
                    for (int64_t j = 0; j < d->k; j++)
                        f += (int64_t)buf[TOP_IDX][t * d->k + j] == i;
                }
                aux += (p / (double)rows) * (f / (double)(rows * d->k));
            }
        aux = cfg->aux_coeff * (double)d->e * aux / (double)groups;
    }
    return aux + z;
}

static void shared_forward(const tsr_moe_config *cfg, const dims *d, float *const *buf,
                           float *const *w, const float *x, float *out)
{
    if (d->fs <= 0) {
        memset(out, 0, (size_t)(d->n * d->c) * sizeof *out);
        return;
    }
    tsr_linear_forward(buf[SH_H], x, w[SHARED_FC1], NULL, d->n, d->c, d->fs1);
    if (cfg->swiglu)
        tsr_swiglu_forward(buf[SH_ACT], buf[SH_H], d->n, d->fs);
    else
        tsr_gelu_forward(buf[SH_ACT], buf[SH_H], d->n * d->fs);
    tsr_linear_forward(out, buf[SH_ACT], w[SHARED_FC2], NULL, d->n, d->fs, d->c);
}

static tsr_status moe_forward(const tsr_module_run *run, const float *in, float *out)
{
    const tsr_moe_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    dims d = dims_of(run);
    tsr_linear_forward(buf[LOGITS], in, w[ROUTER], NULL, d.n, d.c, d.e);
    softmax_rows(buf[PROBS], buf[LOGITS], d.n, d.e);
    route(cfg, &d, buf);
    drop_over_capacity(cfg, &d, buf, run->io->decode_position >= 0);
    dispatch(&d, buf, in);
    expert_forward(cfg, &d, buf, w);
    shared_forward(cfg, &d, buf, w, in, out);
    for (int64_t a = 0; a < d.n * d.k; a++) {
        if (buf[SLOT][a] < 0.0f)
            continue; /* dropped */
        float wt = buf[TOP_W][a];
        const float *y = buf[Y] + (int64_t)buf[SLOT][a] * d.c;
        float *o = out + (a / d.k) * d.c;
        for (int64_t j = 0; j < d.c; j++)
            o[j] += wt * y[j];
    }
    if (run->io->aux_loss != NULL && run->io->decode_position < 0)
        *run->io->aux_loss += loss_terms(cfg, &d, buf);
    return TSR_OK;
}

static void expert_backward(const tsr_moe_config *cfg, const dims *d, float *const *buf,
                            float *const *w, float *const *g)
{
    memset(buf[D_ACT], 0, (size_t)(d->n * d->k * d->f) * sizeof(float));
    memset(buf[D_H], 0, (size_t)(d->n * d->k * d->f1) * sizeof(float));
    memset(buf[D_XPERM], 0, (size_t)(d->n * d->k * d->c) * sizeof(float));
    int64_t first = 0;
    for (int64_t i = 0; i < d->e; i++) {
        int64_t m = (int64_t)buf[COUNTS][i];
        if (m > 0) {
            float *gw2 = g[FC2] != NULL ? g[FC2] + i * d->c * d->f : NULL;
            float *gw1 = g[FC1] != NULL ? g[FC1] + i * d->f1 * d->c : NULL;
            tsr_linear_backward(buf[D_ACT] + first * d->f, gw2, NULL, buf[D_Y] + first * d->c,
                                buf[ACT] + first * d->f, w[FC2] + i * d->c * d->f, m, d->f, d->c);
            if (cfg->swiglu)
                tsr_swiglu_backward(buf[D_H] + first * d->f1, buf[D_ACT] + first * d->f,
                                    buf[H] + first * d->f1, m, d->f);
            else
                tsr_gelu_backward(buf[D_H] + first * d->f1, buf[D_ACT] + first * d->f,
                                  buf[H] + first * d->f1, m * d->f);
            tsr_linear_backward(buf[D_XPERM] + first * d->c, gw1, NULL, buf[D_H] + first * d->f1,
                                buf[X_PERM] + first * d->c, w[FC1] + i * d->f1 * d->c, m, d->c,
                                d->f1);
        }
        first += m;
    }
}

/* d loss / d probs of the balancing loss, times the micro batch's scale. */
static void balancing_grad(const tsr_moe_config *cfg, const dims *d, float *const *buf, float scale)
{
    if (!(cfg->aux_coeff > 0.0f) || cfg->balancing == TSR_MOE_NO_BALANCING)
        return;
    bool per_seq = cfg->balancing == TSR_MOE_SEQ_AUX_LOSS;
    int64_t groups = per_seq ? d->b : 1, rows = d->n / groups;
    float *f = buf[CURSOR]; /* the group's assignment counts per expert */
    for (int64_t gi = 0; gi < groups; gi++) {
        memset(f, 0, (size_t)d->e * sizeof *f);
        for (int64_t a = gi * rows * d->k; a < (gi + 1) * rows * d->k; a++)
            f[(int64_t)buf[TOP_IDX][a]] += 1.0f;
        /* aux = coeff E / groups * sum_i (sum_t p_ti / rows) (f_i / (rows k)) */
        double c = (double)cfg->aux_coeff * (double)d->e / (double)groups /
                   ((double)rows * (double)rows * (double)d->k) * scale;
        for (int64_t t = gi * rows; t < (gi + 1) * rows; t++)
            for (int64_t i = 0; i < d->e; i++)
                buf[D_PROBS][t * d->e + i] += (float)(c * f[i]);
    }
}

static void router_backward(const tsr_moe_config *cfg, const dims *d, float *const *buf,
                            float scale)
{
    memset(buf[D_PROBS], 0, (size_t)(d->n * d->e) * sizeof(float));
    memset(buf[D_LOGITS], 0, (size_t)(d->n * d->e) * sizeof(float));
    for (int64_t t = 0; t < d->n; t++) {
        const float *idx = buf[TOP_IDX] + t * d->k, *wt = buf[TOP_W] + t * d->k;
        const float *dw = buf[D_W] + t * d->k;
        if (cfg->pre_softmax) {
            for (int64_t j = 0; j < d->k; j++)
                buf[D_PROBS][t * d->e + (int64_t)idx[j]] += dw[j];
            continue;
        }
        /* w = softmax over the chosen logits */
        float s = 0.0f;
        for (int64_t j = 0; j < d->k; j++)
            s += wt[j] * dw[j];
        for (int64_t j = 0; j < d->k; j++)
            buf[D_LOGITS][t * d->e + (int64_t)idx[j]] += wt[j] * (dw[j] - s);
    }
    balancing_grad(cfg, d, buf, scale);
    double zc = 2.0 * (double)cfg->z_coeff / (double)d->n * scale;
    for (int64_t t = 0; t < d->n; t++) {
        const float *p = buf[PROBS] + t * d->e, *dp = buf[D_PROBS] + t * d->e;
        const float *lt = buf[LOGITS] + t * d->e;
        float *dl = buf[D_LOGITS] + t * d->e;
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

static void shared_backward(const tsr_moe_config *cfg, const dims *d, float *const *buf,
                            float *const *w, float *const *g, const float *x, const float *dout,
                            float *din)
{
    if (d->fs <= 0)
        return;
    memset(buf[SH_DACT], 0, (size_t)(d->n * d->fs) * sizeof(float));
    tsr_linear_backward(buf[SH_DACT], g[SHARED_FC2], NULL, dout, buf[SH_ACT], w[SHARED_FC2], d->n,
                        d->fs, d->c);
    memset(buf[SH_DH], 0, (size_t)(d->n * d->fs1) * sizeof(float));
    if (cfg->swiglu)
        tsr_swiglu_backward(buf[SH_DH], buf[SH_DACT], buf[SH_H], d->n, d->fs);
    else
        tsr_gelu_backward(buf[SH_DH], buf[SH_DACT], buf[SH_H], d->n * d->fs);
    tsr_linear_backward(din, g[SHARED_FC1], NULL, buf[SH_DH], x, w[SHARED_FC1], d->n, d->c, d->fs1);
}

static tsr_status moe_backward(const tsr_module_run *run, const float *in, const float *out,
                               const float *dout, float *din)
{
    (void)out;
    const tsr_moe_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    float *const *g = run->grads;
    dims d = dims_of(run);
    shared_backward(cfg, &d, buf, w, g, in, dout, din);
    for (int64_t a = 0; a < d.n * d.k; a++) {
        const float *dy = dout + (a / d.k) * d.c;
        int64_t s = (int64_t)buf[SLOT][a];
        if (s < 0) { /* dropped: its weight reached nothing */
            buf[D_W][a] = 0.0f;
            continue;
        }
        const float *y = buf[Y] + s * d.c;
        float *dys = buf[D_Y] + s * d.c, wt = buf[TOP_W][a];
        double dot = 0.0;
        for (int64_t j = 0; j < d.c; j++) {
            dys[j] = wt * dy[j];
            dot += (double)dy[j] * y[j];
        }
        buf[D_W][a] = (float)dot;
    }
    expert_backward(cfg, &d, buf, w, g);
    for (int64_t a = 0; a < d.n * d.k; a++) {
        if (buf[SLOT][a] < 0.0f)
            continue;
        const float *dx = buf[D_XPERM] + (int64_t)buf[SLOT][a] * d.c;
        float *di = din + (a / d.k) * d.c;
        for (int64_t j = 0; j < d.c; j++)
            di[j] += dx[j];
    }
    router_backward(cfg, &d, buf, run->io->loss_scale);
    tsr_linear_backward(din, g[ROUTER], NULL, buf[D_LOGITS], in, w[ROUTER], d.n, d.c, d.e);
    return TSR_OK;
}

const tsr_module_kind tsr_module_moe = {"moe", moe_declare, moe_forward, moe_backward, NULL};
