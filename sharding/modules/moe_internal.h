/*
 * moe_internal.h - the mixture-of-experts module's pieces shared by
 * moe.c (dispatch, experts, combine, expert parallelism) and
 * moe_router.c (routing, capacity, loss terms and their gradients).
 */
#ifndef TSR_SHARDING_MODULES_MOE_INTERNAL_H
#define TSR_SHARDING_MODULES_MOE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "tessera/module.h"
#include "tessera/modules.h"

/* Parameter slots. */
enum { MOE_ROUTER, MOE_FC1, MOE_FC2, MOE_SHARED_FC1, MOE_SHARED_FC2 };

/* Buffer slots: saved ones first. */
enum {
    MOE_LOGITS,
    MOE_PROBS,
    MOE_TOP_IDX,
    MOE_TOP_W,
    MOE_SLOT,        /* (n, k): the assignment's row in the send order; -1 dropped */
    MOE_COUNTS,      /* (E): assignments kept per expert, of this rank's tokens */
    MOE_RECV_COUNTS, /* (ep, E/ep): rows each source sends each local expert */
    MOE_X_PERM,      /* the local experts' input rows, expert by expert */
    MOE_H,
    MOE_ACT,
    MOE_Y_SEND,      /* expert outputs back in the send order */
    MOE_SH_H,
    MOE_SH_ACT,
    MOE_STATS,       /* per group: sum p (E), counts (E); then sum logsumexp^2 */
    MOE_SEND,        /* scratch from here: rows in the send order */
    MOE_RECV,        /* rows in the receive order (source by source) */
    MOE_PERM,        /* expert outputs, then output gradients, expert by expert */
    MOE_D_ACT,
    MOE_D_H,
    MOE_D_XPERM,
    MOE_D_W,
    MOE_D_LOGITS,
    MOE_D_PROBS,
    MOE_SH_DACT,
    MOE_SH_DH,
    MOE_CURSOR,      /* (E) */
    MOE_ROWS,        /* (2 ep): rows sent to / received from each peer */
    MOE_FULL_IDX,    /* the whole micro batch's routing (sequence parallelism) */
    MOE_FULL_W,
    MOE_FULL_SLOT,
    MOE_FULL_ORDER,
    MOE_ROUTE,       /* allgather: this rank's (idx, w, slot) per row, 3k floats */
    MOE_ROUTE_ALL,   /* every rank's, slot replaced by the row in x_perm (-1: elsewhere) */
    MOE_GATHERED,    /* every rank's rows: inputs, output sums, their gradients */
    MOE_D_W_ALL,     /* the router weights' gradients of every rank's assignments */
    MOE_SUMMED,      /* this rank's block of a reduce-scatter */
    MOE_FULL_X,      /* experts cut over tp: the micro batch's rows, gathered */
    MOE_FULL_OUT,    /* their partial outputs; in backward the gathered gradients */
    MOE_FULL_GRAD    /* the partial input gradients of every row */
};

/* n rows routed here: b sequences of t positions each; under sequence
 * parallelism they are share split_rank of split (the tp size) of the
 * micro batch's n_all rows, t of each sequence's t_all; with experts cut
 * over tp (etp) every rank routes all n_all of them. n_local: the rows of
 * the residual stream this rank holds (the shared expert's). f, f1: this
 * rank's width of each expert. */
typedef struct moe_dims {
    int64_t n, c, e, k, f, f1, fs, fs1, b, t, n_local;
    bool etp;
    int64_t split, split_rank, n_all, t_all;
    int64_t ep, ep_rank, el; /* expert-parallel size, rank, local experts */
    int64_t pad;             /* > 0: rows each expert takes from each rank (padding) */
    bool allgather;          /* the allgather dispatcher (ep > 1) */
} moe_dims;

/* An expert's capacity among `assignments` (tokens x k) of a micro batch:
 * ceil(factor x assignments / E), at least 1. */
int64_t tsr_moe_capacity(const tsr_moe_config *cfg, int64_t assignments);

/* Router forward: logits -> probs -> top-k indices and weights; the
 * assignments over capacity marked dropped (slot -1, the rest 0); in
 * training the loss terms' statistics of the whole micro batch. */
tsr_status tsr_moe_route(const tsr_module_run *run, const tsr_moe_config *cfg, const moe_dims *d,
                         float *const *buf, bool decoding);
/* The module's loss terms of the micro batch (from the statistics). */
double tsr_moe_loss_terms(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf);
/* d loss / d logits (buf[MOE_D_LOGITS]) from the weights' gradients
 * (buf[MOE_D_W]) and the loss terms scaled by `scale`. */
void tsr_moe_router_backward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                             float scale);

/* moe.c: the local experts, each one GEMM pair over its rows of
 * buf[MOE_X_PERM] (tsr_moe_expert_rows of them, expert by expert), into y;
 * and back from their output gradients d_y into buf[MOE_D_XPERM]. */
int64_t tsr_moe_expert_rows(const moe_dims *d, float *const *buf, int64_t i);
void tsr_moe_experts_forward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                             float *const *w, float *y);
void tsr_moe_experts_backward(const tsr_moe_config *cfg, const moe_dims *d, float *const *buf,
                              float *const *w, float *const *g, const float *d_y);

/* moe_allgather.c: the allgather dispatcher. forward adds the experts'
 * outputs of this rank's rows to out; backward adds their input gradients
 * to din and sets buf[MOE_D_W]. */
tsr_status tsr_moe_allgather_forward(const tsr_module_run *run, const tsr_moe_config *cfg,
                                     const moe_dims *d, float *const *buf, float *const *w,
                                     const float *x, float *out);
tsr_status tsr_moe_allgather_backward(const tsr_module_run *run, const tsr_moe_config *cfg,
                                      const moe_dims *d, float *const *buf, float *const *w,
                                      float *const *g, const float *dout, float *din);

#endif /* TSR_SHARDING_MODULES_MOE_INTERNAL_H */
