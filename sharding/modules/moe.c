/*
 * moe.c - the mixture-of-experts MLP (modules.h, tsr_moe_config). Local
 * rows (C) -> local rows (C); the router is moe_router.c.
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
 * Expert parallelism (ep > 1): rank r holds experts [r E/ep, (r+1) E/ep).
 * The send order (the counting sort above, over all E experts) is also
 * by destination rank; the counts of each destination's experts go to it
 * (one all-to-all of E/ep floats per peer), the rows follow (all-to-allv
 * over the ep group), arriving source by source; they are permuted
 * expert by expert, so each local expert is one GEMM pair over rows of
 * every source; the outputs go back the same way, and the combine is as
 * on one rank. Backward sends the output gradients along the same path
 * and the input gradients back. Routing, capacity and the loss terms see
 * only the rank's own tokens, before any exchange: no layout changes
 * them. A rank may receive up to ep x min(k, E/ep) rows per token it
 * holds, or under a capacity E capacities; the buffers are planned for
 * the smaller. Padded to capacity, expert i's
 * block of the send order is [i pad, (i+1) pad), zero rows after the kept
 * ones: every exchange has the same sizes and the counts need none.
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
#include <string.h>

#include "moe_internal.h"
#include "tessera/kernels.h"


static moe_dims dims_of(const tsr_module_run *run)
{
    const tsr_module_info *info = run->info;
    const tsr_moe_config *cfg = info->config;
    moe_dims d;
    bool decoding = run->io->decode_position >= 0;
    d.etp = cfg->tensor_parallel && info->tp_size > 1 && !decoding;
    int64_t tp = d.etp ? info->tp_size : 1;
    d.n = tsr_module_rows(run, d.etp ? TSR_ROWS_TOKENS : TSR_ROWS_LOCAL);
    d.n_local = tsr_module_rows(run, TSR_ROWS_LOCAL);
    d.c = info->hidden;
    d.e = cfg->experts;
    d.k = cfg->topk;
    d.f = cfg->ffn / tp;
    d.f1 = (cfg->swiglu ? 2 * cfg->ffn : cfg->ffn) / tp;
    d.fs = cfg->shared_ffn;
    d.fs1 = cfg->swiglu ? 2 * cfg->shared_ffn : cfg->shared_ffn;
    d.split = info->sequence_parallel && !decoding && !d.etp ? info->tp_size : 1;
    d.split_rank = d.split > 1 ? info->tp_rank : 0;
    d.t = decoding ? 1 : d.split > 1 ? info->local_seq : info->seq;
    d.b = d.n / d.t;
    d.n_all = d.n * d.split;
    d.t_all = d.t * d.split;
    d.ep = info->ep_size > 1 ? info->ep_size : 1;
    d.ep_rank = info->ep_rank;
    d.el = d.e / d.ep;
    d.allgather = cfg->allgather && d.ep > 1;
    d.pad = cfg->pad_to_capacity && cfg->capacity > 0.0 && !decoding
                ? tsr_moe_capacity(cfg, d.n_all * d.k)
                : 0;
    return d;
}

static tsr_status moe_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_moe_config *cfg = info->config;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_moe_config");
    if (info->in_rows != TSR_ROWS_LOCAL || info->in_cols != info->hidden)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "reads the residual stream");
    if (info->tp_size > 1 && !info->sequence_parallel)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "MoE layers under tensor parallelism need sequence parallelism: "
                             "each tensor-parallel rank routes its share of the tokens through "
                             "experts it holds whole");
    int64_t ep = info->ep_size > 1 ? info->ep_size : 1;
    if (cfg->experts < 1 || cfg->topk < 1 || cfg->topk > cfg->experts || cfg->ffn < 1 ||
        cfg->shared_ffn < 0 || cfg->experts % ep != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%lld experts, top-%lld, width %lld over %lld expert-parallel "
                             "ranks: need 1 <= k <= experts, a positive width and experts "
                             "divisible by the ranks",
                             (long long)cfg->experts, (long long)cfg->topk, (long long)cfg->ffn,
                             (long long)ep);
    bool etp = cfg->tensor_parallel && info->tp_size > 1;
    bool split = info->sequence_parallel && info->tp_size > 1 && !etp;
    int64_t n = info->micro_batch * (split ? info->local_seq : info->seq), c = info->hidden;
    int64_t e = cfg->experts, tp = etp ? info->tp_size : 1;
    if (cfg->ffn % tp != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "expert width %lld is not divisible by --tensor-model-parallel-size "
                             "%lld, over which each expert is cut",
                             (long long)cfg->ffn, (long long)tp);
    /* this rank's width of each expert */
    int64_t k = cfg->topk, f = cfg->ffn / tp, f1 = cfg->swiglu ? 2 * f : f;
    int64_t fs = cfg->shared_ffn, fs1 = cfg->swiglu ? 2 * fs : fs;
    /* rows sent and received per row held, at most: k each, or from every
     * rank min(k, E/ep) of its rows; under a capacity no more than E
     * capacities arrive (each source keeps at most one capacity per
     * expert), or, padded, exactly that; a generation step (no dropping)
     * still needs k per row of its one position */
    int64_t el = e / ep, ks = k, r = ep * (k < el ? k : el);
    if (cfg->capacity > 0.0) {
        int64_t kept = e * tsr_moe_capacity(cfg, info->micro_batch * info->seq * k);
        int64_t bound = (kept + n - 1) / n, decode = (k + info->seq - 1) / info->seq;
        bound = bound > decode ? bound : decode;
        if (cfg->pad_to_capacity) {
            ks = ks > bound ? ks : bound;
            r = r > bound ? r : bound;
        } else {
            r = r < bound ? r : bound;
        }
    }
    if (n * ks >= (int64_t)1 << 24 || n * r >= (int64_t)1 << 24)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%lld tokens x top-%lld assignments per micro batch (%lld rows "
                             "sent, %lld received at most): the router keeps slots below 2^24; "
                             "use a smaller micro batch",
                             (long long)n, (long long)k, (long long)(n * ks), (long long)(n * r));
    bool shared = fs > 0, exchanges = ep > 1, gathers_all = exchanges && cfg->allgather;
    /* a weight that sees this rank's share of the rows is summed over tp;
     * with experts cut over tp the router and experts see every row */
    unsigned partial = TSR_PARAM_DECAY | TSR_PARAM_SP_PARTIAL | TSR_PARAM_NO_FP32_READ;
    unsigned flags = etp ? TSR_PARAM_DECAY | TSR_PARAM_NO_FP32_READ : partial;
    tsr_decl_param(decl, true, "router.weight", e, c, TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL,
                   cfg->init_std, flags);
    /* expert i's rows are [i * f1, (i + 1) * f1) (under SwiGLU its gate
     * then its up rows) and [i * c, (i + 1) * c); cut over tp, each expert
     * is a column-parallel fc1 and a row-parallel fc2 */
    int fc1 = tsr_decl_param(decl, true, "experts.linear_fc1.weight", e * f1 * tp, c,
                             TSR_PARAM_SPLIT_EXPERTS, TSR_INIT_NORMAL, cfg->init_std, flags);
    int fc2 = tsr_decl_param(decl, true, "experts.linear_fc2.weight", e * c, f * tp,
                             TSR_PARAM_SPLIT_EXPERTS, TSR_INIT_NORMAL, cfg->out_init_std, flags);
    tsr_decl_experts(decl, fc1, e);
    tsr_decl_experts(decl, fc2, e);
    if (etp) {
        tsr_decl_expert_split(decl, fc1,
                              cfg->swiglu ? TSR_PARAM_SPLIT_GATE_UP : TSR_PARAM_SPLIT_ROWS);
        tsr_decl_expert_split(decl, fc2, TSR_PARAM_SPLIT_COLS);
    }
    tsr_decl_param(decl, shared, "shared_experts.linear_fc1.weight", shared ? fs1 : 1, c,
                   TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->init_std, partial);
    tsr_decl_param(decl, shared, "shared_experts.linear_fc2.weight", c, shared ? fs : 1,
                   TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->out_init_std, partial);
    tsr_buffer_life S = TSR_BUFFER_SAVED, X = TSR_BUFFER_SCRATCH;
    tsr_buffer_rows L = TSR_ROWS_LOCAL, F = TSR_ROWS_FIXED, ALL = TSR_ROWS_TOKENS;
    tsr_buffer_rows R = etp ? ALL : L; /* the rows routed here */
    bool gathers = split && cfg->capacity > 0.0; /* drops over the whole micro batch */
    tsr_decl_buffer(decl, true, "logits", R, e, S);
    tsr_decl_buffer(decl, true, "probs", R, e, S);
    tsr_decl_buffer(decl, true, "top_idx", R, k, S);
    tsr_decl_buffer(decl, true, "top_w", R, k, S);
    tsr_decl_buffer(decl, true, "slot", R, k, S);
    tsr_decl_buffer(decl, true, "counts", F, e, S);
    tsr_decl_buffer(decl, true, "recv_counts", F, e, S);
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "x_perm", R, r * c, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "h", R, r * f1, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "act", R, r * f, S));
    tsr_decl_buffer(decl, true, "y", R, (gathers_all && r > ks ? r : ks) * c, S);
    tsr_decl_activation(decl, tsr_decl_buffer(decl, shared, "shared_h", L, shared ? fs1 : 1, S));
    tsr_decl_activation(decl,
                        tsr_decl_buffer(decl, shared, "shared_act", L, shared ? fs : 1, S));
    tsr_decl_buffer(decl, true, "stats", F, 2 * info->micro_batch * e + 1, S);
    tsr_decl_buffer(decl, true, "send", R, ks * c, X);
    tsr_decl_buffer(decl, exchanges, "recv", R, r * c, X);
    tsr_decl_buffer(decl, exchanges, "perm", R, r * c, X);
    tsr_decl_buffer(decl, true, "d_act", R, r * f, X);
    tsr_decl_buffer(decl, true, "d_h", R, r * f1, X);
    tsr_decl_buffer(decl, true, "d_x_perm", R, r * c, X);
    tsr_decl_buffer(decl, true, "d_w", R, k, X);
    tsr_decl_buffer(decl, true, "d_logits", R, e, X);
    tsr_decl_buffer(decl, true, "d_probs", R, e, X);
    tsr_decl_buffer(decl, shared, "shared_d_act", L, shared ? fs : 1, X);
    tsr_decl_buffer(decl, shared, "shared_d_h", L, shared ? fs1 : 1, X);
    tsr_decl_buffer(decl, true, "cursor", F, e, X);
    tsr_decl_buffer(decl, true, "peer_rows", F, 2 * ep, X);
    tsr_decl_buffer(decl, gathers, "full_idx", ALL, k, X);
    tsr_decl_buffer(decl, gathers, "full_w", ALL, k, X);
    tsr_decl_buffer(decl, gathers, "full_slot", ALL, k, X);
    tsr_decl_buffer(decl, gathers, "full_order", ALL, k, X);
    tsr_decl_buffer(decl, gathers_all, "route", R, 3 * k, X);
    tsr_decl_buffer(decl, gathers_all, "route_all", R, 3 * k * ep, S);
    tsr_decl_buffer(decl, gathers_all, "gathered", R, ep * c, X);
    tsr_decl_buffer(decl, gathers_all, "d_w_all", R, ep * k, X);
    tsr_decl_buffer(decl, gathers_all || etp, "summed", R, c, X);
    tsr_decl_buffer(decl, etp, "full_x", ALL, c, S);
    tsr_decl_buffer(decl, etp, "full_out", ALL, c, X);
    tsr_decl_buffer(decl, etp, "full_grad", ALL, c, X);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = c;
    decl->keeps_input = true;
    decl->decodes = true; /* row-wise */
    return TSR_OK;
}

/* Counting sort of the kept assignments by expert into `send`: counts,
 * and slot[t, j] (-1 stays for the dropped). Padded, expert i's rows
 * start at i x pad and zero rows fill its block. */
static void dispatch(const moe_dims *d, float *const *buf, const float *x, float *send)
{
    float *counts = buf[MOE_COUNTS], *cursor = buf[MOE_CURSOR];
    memset(counts, 0, (size_t)d->e * sizeof *counts);
    for (int64_t a = 0; a < d->n * d->k; a++)
        if (buf[MOE_SLOT][a] >= 0.0f)
            counts[(int64_t)buf[MOE_TOP_IDX][a]] += 1.0f;
    float start = 0.0f;
    for (int64_t i = 0; i < d->e; i++) {
        cursor[i] = start;
        start += d->pad > 0 ? (float)d->pad : counts[i];
        if (d->pad > 0) {
            int64_t kept = (int64_t)counts[i];
            memset(send + (i * d->pad + kept) * d->c, 0,
                   (size_t)((d->pad - kept) * d->c) * sizeof(float));
        }
    }
    for (int64_t a = 0; a < d->n * d->k; a++) {
        if (buf[MOE_SLOT][a] < 0.0f)
            continue;
        int64_t i = (int64_t)buf[MOE_TOP_IDX][a], s = (int64_t)cursor[i];
        cursor[i] += 1.0f;
        buf[MOE_SLOT][a] = (float)s;
        memcpy(send + s * d->c, x + (a / d->k) * d->c, (size_t)d->c * sizeof(float));
    }
    for (int64_t i = 0; d->pad > 0 && i < d->e; i++)
        counts[i] = (float)d->pad;
}

/* Rows to and from each peer (buf[MOE_ROWS]: ep sent, then ep received). */
static void peer_rows(const moe_dims *d, float *const *buf)
{
    float *sent = buf[MOE_ROWS], *received = sent + d->ep;
    for (int64_t p = 0; p < d->ep; p++) {
        sent[p] = received[p] = 0.0f;
        for (int64_t i = 0; i < d->el; i++) {
            sent[p] += buf[MOE_COUNTS][p * d->el + i];
            received[p] += buf[MOE_RECV_COUNTS][p * d->el + i];
        }
    }
}

int64_t tsr_moe_expert_rows(const moe_dims *d, float *const *buf, int64_t i)
{
    int64_t m = 0;
    for (int64_t s = 0; s < d->ep; s++)
        m += (int64_t)buf[MOE_RECV_COUNTS][s * d->el + i];
    return m;
}

/* The rows of all the local experts: x_perm's rows. */
static int64_t local_expert_rows(const moe_dims *d, float *const *buf)
{
    int64_t rows = 0;
    for (int64_t i = 0; i < d->el; i++)
        rows += tsr_moe_expert_rows(d, buf, i);
    return rows;
}

/* Received order (source by source, each source's rows expert by expert)
 * <-> expert order (expert by expert, each expert's rows source by
 * source), rows of c floats. */
static void permute(const moe_dims *d, float *const *buf, const float *from, float *to,
                    bool to_experts)
{
    const float *rc = buf[MOE_RECV_COUNTS];
    int64_t expert_start = 0;
    for (int64_t i = 0; i < d->el; i++) {
        int64_t at = expert_start, source_start = 0;
        for (int64_t s = 0; s < d->ep; s++) {
            int64_t before = 0; /* of source s's rows, those of experts below i */
            for (int64_t q = 0; q < i; q++)
                before += (int64_t)rc[s * d->el + q];
            int64_t m = (int64_t)rc[s * d->el + i], src = source_start + before;
            size_t bytes = (size_t)(m * d->c) * sizeof(float);
            if (to_experts)
                memcpy(to + at * d->c, from + src * d->c, bytes);
            else
                memcpy(to + src * d->c, from + at * d->c, bytes);
            at += m;
            for (int64_t q = 0; q < d->el; q++)
                source_start += (int64_t)rc[s * d->el + q];
        }
        expert_start = at;
    }
}

/* Sends rows in the send order to their experts' ranks and leaves them in
 * expert order in `experts`; or (back) the reverse, from `experts` to
 * `send`. One rank: the orders are the same and nothing moves. */
static tsr_status exchange(const tsr_module_run *run, const moe_dims *d, float *const *buf,
                           float *send, float *experts, bool back)
{
    if (d->ep <= 1)
        return TSR_OK;
    const float *sent = buf[MOE_ROWS], *received = sent + d->ep;
    if (!back) {
        tsr_status st = tsr_module_ep_alltoallv(run, send, sent, buf[MOE_RECV], received, d->c);
        if (st == TSR_OK)
            permute(d, buf, buf[MOE_RECV], experts, true);
        return st;
    }
    permute(d, buf, experts, buf[MOE_RECV], false);
    return tsr_module_ep_alltoallv(run, buf[MOE_RECV], received, send, sent, d->c);
}

void tsr_moe_experts_forward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                             float *const *w, float *y)
{
    int64_t first = 0;
    for (int64_t i = 0; i < d->el; i++) {
        int64_t m = tsr_moe_expert_rows(d, buf, i);
        if (m > 0) {
            tsr_linear_forward(buf[MOE_H] + first * d->f1, buf[MOE_X_PERM] + first * d->c,
                               w[MOE_FC1] + i * d->f1 * d->c, NULL, m, d->c, d->f1);
            if (cfg->swiglu)
                tsr_swiglu_forward(buf[MOE_ACT] + first * d->f, buf[MOE_H] + first * d->f1, m,
                                   d->f);
            else
                tsr_gelu_forward(buf[MOE_ACT] + first * d->f, buf[MOE_H] + first * d->f1,
                                 m * d->f);
            tsr_linear_forward(y + first * d->c, buf[MOE_ACT] + first * d->f,
                               w[MOE_FC2] + i * d->c * d->f, NULL, m, d->f, d->c);
        }
        first += m;
    }
}

static void shared_forward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                           float *const *w, const float *x, float *out)
{
    if (d->fs <= 0) {
        memset(out, 0, (size_t)(d->n_local * d->c) * sizeof *out);
        return;
    }
    tsr_linear_forward(buf[MOE_SH_H], x, w[MOE_SHARED_FC1], NULL, d->n_local, d->c, d->fs1);
    if (cfg->swiglu)
        tsr_swiglu_forward(buf[MOE_SH_ACT], buf[MOE_SH_H], d->n_local, d->fs);
    else
        tsr_gelu_forward(buf[MOE_SH_ACT], buf[MOE_SH_H], d->n_local * d->fs);
    tsr_linear_forward(out, buf[MOE_SH_ACT], w[MOE_SHARED_FC2], NULL, d->n_local, d->fs, d->c);
}

/* Dispatch, experts and combine through all-to-all exchanges (or, on one
 * rank, none): out (the routed rows) += the experts' outputs. */
static tsr_status alltoall_forward(const tsr_module_run *run, const tsr_moe_config *cfg,
                                   const moe_dims *d, float *const *buf, float *const *w,
                                   const float *in, float *out)
{
    bool one = d->ep <= 1;
    tsr_status st = TSR_OK;
    /* on one rank the send order is the expert order: rows go straight
     * where the experts read and write them */
    dispatch(d, buf, in, one ? buf[MOE_X_PERM] : buf[MOE_SEND]);
    if (d->pad > 0) /* every block is the capacity: nothing to tell */
        for (int64_t i = 0; i < d->e; i++)
            buf[MOE_RECV_COUNTS][i] = (float)d->pad;
    else
        st = tsr_module_ep_alltoall(run, buf[MOE_COUNTS], buf[MOE_RECV_COUNTS], d->el);
    if (st != TSR_OK)
        return st;
    peer_rows(d, buf);
    st = exchange(run, d, buf, buf[MOE_SEND], buf[MOE_X_PERM], false);
    if (st != TSR_OK)
        return st;
    tsr_moe_experts_forward(cfg, d, buf, w, one ? buf[MOE_Y_SEND] : buf[MOE_PERM]);
    st = exchange(run, d, buf, buf[MOE_Y_SEND], buf[MOE_PERM], true);
    if (st != TSR_OK)
        return st;
    for (int64_t a = 0; a < d->n * d->k; a++) {
        if (buf[MOE_SLOT][a] < 0.0f)
            continue; /* dropped */
        float wt = buf[MOE_TOP_W][a];
        const float *y = buf[MOE_Y_SEND] + (int64_t)buf[MOE_SLOT][a] * d->c;
        float *o = out + (a / d->k) * d->c;
        for (int64_t j = 0; j < d->c; j++)
            o[j] += wt * y[j];
    }
    return TSR_OK;
}

/* Experts cut over tp: partial sums of every row (full) -> this rank's
 * rows of their sum over tp, added to local. */
static tsr_status add_scattered(const tsr_module_run *run, const moe_dims *d, float *const *buf,
                                const float *full, float *local)
{
    tsr_status st = tsr_module_tp_scatter_rows(run, buf[MOE_SUMMED], full, d->c);
    for (int64_t i = 0; st == TSR_OK && i < d->n_local * d->c; i++)
        local[i] += buf[MOE_SUMMED][i];
    return st;
}

static tsr_status moe_forward(const tsr_module_run *run, const float *in, float *out)
{
    const tsr_moe_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    moe_dims d = dims_of(run);
    /* experts cut over tp route every row of the micro batch */
    const float *x = d.etp ? buf[MOE_FULL_X] : in;
    tsr_status st = d.etp ? tsr_module_tp_gather_rows(run, buf[MOE_FULL_X], in, d.c) : TSR_OK;
    if (st != TSR_OK)
        return st;
    tsr_linear_forward(buf[MOE_LOGITS], x, w[MOE_ROUTER], NULL, d.n, d.c, d.e);
    st = tsr_moe_route(run, cfg, &d, buf, run->io->decode_position >= 0);
    if (st != TSR_OK)
        return st;
    shared_forward(cfg, &d, buf, w, in, out);
    float *routed = d.etp ? buf[MOE_FULL_OUT] : out;
    if (d.etp)
        memset(routed, 0, (size_t)(d.n * d.c) * sizeof *routed);
    st = d.allgather ? tsr_moe_allgather_forward(run, cfg, &d, buf, w, x, routed)
                     : alltoall_forward(run, cfg, &d, buf, w, x, routed);
    if (st == TSR_OK && d.etp)
        st = add_scattered(run, &d, buf, routed, out);
    if (st != TSR_OK)
        return st;
    if (run->io->aux_loss != NULL && run->io->decode_position < 0)
        *run->io->aux_loss += tsr_moe_loss_terms(cfg, &d, buf);
    if (run->io->expert_load != NULL && run->io->decode_position < 0) {
        /* every rank sends n k assignments, so n k is also what each
         * receives on average */
        run->io->expert_load->rows += (double)local_expert_rows(&d, buf);
        run->io->expert_load->even_rows += (double)(d.n * d.k);
    }
    return TSR_OK;
}

void tsr_moe_experts_backward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                              float *const *w, float *const *g, const float *d_y)
{
    int64_t rows = local_expert_rows(d, buf);
    memset(buf[MOE_D_ACT], 0, (size_t)(rows * d->f) * sizeof(float));
    memset(buf[MOE_D_H], 0, (size_t)(rows * d->f1) * sizeof(float));
    memset(buf[MOE_D_XPERM], 0, (size_t)(rows * d->c) * sizeof(float));
    int64_t first = 0;
    for (int64_t i = 0; i < d->el; i++) {
        int64_t m = tsr_moe_expert_rows(d, buf, i);
        if (m > 0) {
            float *gw2 = g[MOE_FC2] != NULL ? g[MOE_FC2] + i * d->c * d->f : NULL;
            float *gw1 = g[MOE_FC1] != NULL ? g[MOE_FC1] + i * d->f1 * d->c : NULL;
            tsr_linear_backward(buf[MOE_D_ACT] + first * d->f, gw2, NULL, d_y + first * d->c,
                                buf[MOE_ACT] + first * d->f, w[MOE_FC2] + i * d->c * d->f, m, d->f,
                                d->c);
            if (cfg->swiglu)
                tsr_swiglu_backward(buf[MOE_D_H] + first * d->f1, buf[MOE_D_ACT] + first * d->f,
                                    buf[MOE_H] + first * d->f1, m, d->f);
            else
                tsr_gelu_backward(buf[MOE_D_H] + first * d->f1, buf[MOE_D_ACT] + first * d->f,
                                  buf[MOE_H] + first * d->f1, m * d->f);
            tsr_linear_backward(buf[MOE_D_XPERM] + first * d->c, gw1, NULL,
                                buf[MOE_D_H] + first * d->f1, buf[MOE_X_PERM] + first * d->c,
                                w[MOE_FC1] + i * d->f1 * d->c, m, d->c, d->f1);
        }
        first += m;
    }
}

static void shared_backward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                            float *const *w, float *const *g, const float *x, const float *dout,
                            float *din)
{
    if (d->fs <= 0)
        return;
    memset(buf[MOE_SH_DACT], 0, (size_t)(d->n_local * d->fs) * sizeof(float));
    tsr_linear_backward(buf[MOE_SH_DACT], g[MOE_SHARED_FC2], NULL, dout, buf[MOE_SH_ACT],
                        w[MOE_SHARED_FC2], d->n_local, d->fs, d->c);
    memset(buf[MOE_SH_DH], 0, (size_t)(d->n_local * d->fs1) * sizeof(float));
    if (cfg->swiglu)
        tsr_swiglu_backward(buf[MOE_SH_DH], buf[MOE_SH_DACT], buf[MOE_SH_H], d->n_local, d->fs);
    else
        tsr_gelu_backward(buf[MOE_SH_DH], buf[MOE_SH_DACT], buf[MOE_SH_H], d->n_local * d->fs);
    tsr_linear_backward(din, g[MOE_SHARED_FC1], NULL, buf[MOE_SH_DH], x, w[MOE_SHARED_FC1],
                        d->n_local, d->c, d->fs1);
}

/* The experts' part of backward through all-to-all exchanges: din gets
 * the experts' input gradients, buf[MOE_D_W] the router weights'. */
static tsr_status alltoall_backward(const tsr_module_run *run, const tsr_moe_config *cfg,
                                    const moe_dims *d, float *const *buf, float *const *w,
                                    float *const *g, const float *dout, float *din)
{
    bool one = d->ep <= 1;
    float *d_send = buf[MOE_SEND]; /* output gradients in the send order */
    if (d->pad > 0) /* the padding rows' stay zero */
        memset(d_send, 0, (size_t)(d->e * d->pad * d->c) * sizeof(float));
    for (int64_t a = 0; a < d->n * d->k; a++) {
        const float *dy = dout + (a / d->k) * d->c;
        int64_t s = (int64_t)buf[MOE_SLOT][a];
        if (s < 0) { /* dropped: its weight reached nothing */
            buf[MOE_D_W][a] = 0.0f;
            continue;
        }
        const float *y = buf[MOE_Y_SEND] + s * d->c;
        float *dys = d_send + s * d->c, wt = buf[MOE_TOP_W][a];
        double dot = 0.0;
        for (int64_t j = 0; j < d->c; j++) {
            dys[j] = wt * dy[j];
            dot += (double)dy[j] * y[j];
        }
        buf[MOE_D_W][a] = (float)dot;
    }
    peer_rows(d, buf);
    tsr_status st = exchange(run, d, buf, d_send, buf[MOE_PERM], false);
    if (st != TSR_OK)
        return st;
    tsr_moe_experts_backward(cfg, d, buf, w, g, one ? d_send : buf[MOE_PERM]);
    /* the input gradients come back into the send buffer (free again) */
    st = exchange(run, d, buf, d_send, buf[MOE_D_XPERM], true);
    if (st != TSR_OK)
        return st;
    const float *d_x = one ? buf[MOE_D_XPERM] : d_send;
    for (int64_t a = 0; a < d->n * d->k; a++) {
        if (buf[MOE_SLOT][a] < 0.0f)
            continue;
        const float *dx = d_x + (int64_t)buf[MOE_SLOT][a] * d->c;
        float *di = din + (a / d->k) * d->c;
        for (int64_t j = 0; j < d->c; j++)
            di[j] += dx[j];
    }
    return TSR_OK;
}

static tsr_status moe_backward(const tsr_module_run *run, const float *in, const float *out,
                               const float *dout, float *din)
{
    (void)out;
    const tsr_moe_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    float *const *g = run->grads;
    moe_dims d = dims_of(run);
    shared_backward(cfg, &d, buf, w, g, in, dout, din);
    /* experts cut over tp: every row's output gradient, partial input
     * gradients of every row */
    const float *x = d.etp ? buf[MOE_FULL_X] : in, *dy = dout;
    float *dx = din;
    tsr_status st = TSR_OK;
    if (d.etp) {
        st = tsr_module_tp_gather_rows(run, buf[MOE_FULL_OUT], dout, d.c);
        dy = buf[MOE_FULL_OUT];
        dx = buf[MOE_FULL_GRAD];
        memset(dx, 0, (size_t)(d.n * d.c) * sizeof *dx);
    }
    if (st == TSR_OK)
        st = d.allgather ? tsr_moe_allgather_backward(run, cfg, &d, buf, w, g, dy, dx)
                         : alltoall_backward(run, cfg, &d, buf, w, g, dy, dx);
    if (st == TSR_OK && d.etp) /* each rank's experts' part of y */
        st = tsr_module_tp_sum(run, buf[MOE_D_W], d.n * d.k);
    if (st != TSR_OK)
        return st;
    tsr_moe_router_backward(cfg, &d, buf, run->io->loss_scale);
    /* the router's input gradient is whole on every tp rank: one adds it */
    bool adds = !d.etp || run->info->tp_rank == 0;
    tsr_linear_backward(adds ? dx : NULL, g[MOE_ROUTER], NULL, buf[MOE_D_LOGITS], x,
                        w[MOE_ROUTER], d.n, d.c, d.e);
    return d.etp ? add_scattered(run, &d, buf, dx, din) : TSR_OK;
}

const tsr_module_kind tsr_module_moe = {"moe", moe_declare, moe_forward, moe_backward, NULL};
