/*
 * moe_allgather.c - the allgather dispatcher of the mixture-of-experts
 * module (--moe-token-dispatcher-type allgather; moe_internal.h).
 *
 * Every rank of the expert-parallel group gathers every rank's rows and
 * routing (one allgather of the rows, one of k indices, weights and kept
 * flags per row), picks the assignments of its own experts, sorted expert
 * by expert in gathered order (rank by rank, then token order: the rows
 * each expert sees are the all-to-all dispatcher's, in the same order),
 * runs each local expert as one GEMM pair, adds the weighted outputs into
 * a buffer of every rank's rows and reduce-scatters it: each rank gets the
 * sum over the group's experts for its own rows. Backward gathers the
 * output gradients, and reduce-scatters the router weights' and the
 * inputs' gradients back. More bytes move than all-to-all sends (every
 * row to every rank, and outputs for every row), but in collectives whose
 * sizes do not depend on the routing.
 */
#include <stdbool.h>
#include <string.h>

#include "moe_internal.h"

/* The gathered assignment a (of ep x n x k): its row among the gathered
 * rows, and its (index, weight, slot) entries. */
static float *entry(const moe_dims *d, float *const *buf, int64_t a, int64_t *row)
{
    *row = a / d->k;
    return buf[MOE_ROUTE_ALL] + *row * 3 * d->k + a % d->k;
}

/* The local expert of a gathered assignment's entry, or -1 (dropped, or
 * another rank's expert). */
static int64_t local_expert(const moe_dims *d, const float *e)
{
    int64_t i = (int64_t)e[0] - d->ep_rank * d->el;
    return e[2 * d->k] >= 0.0f && i >= 0 && i < d->el ? i : -1;
}

/* Counting sort of the gathered assignments to this rank's experts into
 * x_perm; their slots become rows of x_perm, every other one -1. */
static void select_local(const moe_dims *d, float *const *buf, const float *rows)
{
    int64_t total = d->ep * d->n * d->k;
    float *counts = buf[MOE_RECV_COUNTS], *cursor = buf[MOE_CURSOR];
    memset(counts, 0, (size_t)d->e * sizeof *counts); /* only the first el are used */
    for (int64_t a = 0; a < total; a++) {
        int64_t row, i = local_expert(d, entry(d, buf, a, &row));
        if (i >= 0)
            counts[i] += 1.0f;
    }
    float start = 0.0f;
    for (int64_t i = 0; i < d->el; i++) {
        cursor[i] = start;
        start += counts[i];
    }
    for (int64_t a = 0; a < total; a++) {
        int64_t row;
        float *e = entry(d, buf, a, &row);
        int64_t i = local_expert(d, e);
        if (i < 0) {
            e[2 * d->k] = -1.0f;
            continue;
        }
        int64_t s = (int64_t)cursor[i];
        cursor[i] += 1.0f;
        e[2 * d->k] = (float)s;
        memcpy(buf[MOE_X_PERM] + s * d->c, rows + row * d->c, (size_t)d->c * sizeof(float));
    }
}

/* Every gathered row's sum of its local assignments' rows of `from`
 * (expert order, times the router weight when weighted), summed over the
 * group: this rank's rows of the sum are added to dst. */
static tsr_status sum_back(const tsr_module_run *run, const moe_dims *d, float *const *buf,
                           const float *from, bool weighted, float *dst)
{
    int64_t n = d->n, k = d->k, c = d->c, all = d->ep * n;
    float *gathered = buf[MOE_GATHERED];
    memset(gathered, 0, (size_t)(all * c) * sizeof *gathered);
    for (int64_t a = 0; a < all * k; a++) {
        int64_t row;
        const float *e = entry(d, buf, a, &row);
        if (e[2 * k] < 0.0f)
            continue;
        const float *y = from + (int64_t)e[2 * k] * c;
        float *o = gathered + row * c, wt = weighted ? e[k] : 1.0f;
        for (int64_t j = 0; j < c; j++)
            o[j] += wt * y[j];
    }
    tsr_status st = tsr_module_ep_reduce_scatter(run, gathered, buf[MOE_SUMMED], n * c);
    for (int64_t i = 0; st == TSR_OK && i < n * c; i++)
        dst[i] += buf[MOE_SUMMED][i];
    return st;
}

tsr_status tsr_moe_allgather_forward(const tsr_module_run *run, const tsr_moe_config *cfg,
                                     const moe_dims *d, float *const *buf, float *const *w,
                                     const float *x, float *out)
{
    int64_t n = d->n, k = d->k, c = d->c;
    float *route = buf[MOE_ROUTE], *gathered = buf[MOE_GATHERED];
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < k; j++) {
            route[t * 3 * k + j] = buf[MOE_TOP_IDX][t * k + j];
            route[t * 3 * k + k + j] = buf[MOE_TOP_W][t * k + j];
            route[t * 3 * k + 2 * k + j] = buf[MOE_SLOT][t * k + j]; /* -1: dropped */
        }
    tsr_status st = tsr_module_ep_allgather(run, route, buf[MOE_ROUTE_ALL], n * 3 * k);
    if (st == TSR_OK)
        st = tsr_module_ep_allgather(run, x, gathered, n * c);
    if (st != TSR_OK)
        return st;
    select_local(d, buf, gathered);
    tsr_moe_experts_forward(cfg, d, buf, w, buf[MOE_Y_SEND]);
    return sum_back(run, d, buf, buf[MOE_Y_SEND], true, out);
}

tsr_status tsr_moe_allgather_backward(const tsr_module_run *run, const tsr_moe_config *cfg,
                                      const moe_dims *d, float *const *buf, float *const *w,
                                      float *const *g, const float *dout, float *din)
{
    int64_t n = d->n, k = d->k, c = d->c, all = d->ep * n;
    float *gathered = buf[MOE_GATHERED], *d_y = buf[MOE_PERM], *d_w = buf[MOE_D_W_ALL];
    tsr_status st = tsr_module_ep_allgather(run, dout, gathered, n * c);
    if (st != TSR_OK)
        return st;
    memset(d_w, 0, (size_t)(all * k) * sizeof *d_w);
    for (int64_t a = 0; a < all * k; a++) {
        int64_t row;
        const float *e = entry(d, buf, a, &row);
        if (e[2 * k] < 0.0f)
            continue; /* another rank's expert, or dropped: its weight reached nothing here */
        int64_t s = (int64_t)e[2 * k];
        const float *dy = gathered + row * c, *y = buf[MOE_Y_SEND] + s * c;
        float *dys = d_y + s * c, wt = e[k];
        double dot = 0.0;
        for (int64_t j = 0; j < c; j++) {
            dys[j] = wt * dy[j];
            dot += (double)dy[j] * y[j];
        }
        d_w[a] = (float)dot;
    }
    st = tsr_module_ep_reduce_scatter(run, d_w, buf[MOE_D_W], n * k);
    if (st != TSR_OK)
        return st;
    tsr_moe_experts_backward(cfg, d, buf, w, g, d_y);
    return sum_back(run, d, buf, buf[MOE_D_XPERM], false, din);
}
