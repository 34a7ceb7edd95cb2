/*
 * dp_internal.h - the data-parallel engine's state, shared by
 * data_parallel.c (bucket sequencing, all-reduce, hooks) and
 * dist_optimizer.c (reduce-scatter, parameter all-gather).
 *
 * Requests are indexed in reduction order (k = 0 is the last bucket in
 * memory). Every data-parallel rank starts the same collectives in the
 * same order: buckets by decreasing offset, then all-gathers, and the
 * all-gathers are complete before the next bucket starts.
 */
#ifndef TSR_SHARDING_DP_INTERNAL_H
#define TSR_SHARDING_DP_INTERNAL_H

#include "collectives/comm.h"
#include "data_parallel.h"

struct tsr_dp {
    tsr_grid *grid;
    tsr_comm *comm;  /* the data-parallel group */
    tsr_comm *expert_comm; /* the expert-data-parallel group (expert buckets) */
    tsr_comm *world; /* for the gradient norm */
    bool sharded;    /* distributed optimizer */
    bool overlap_param_gather;
    bool bf16; /* --grad-reduce-in-bf16: buckets reduced as bf16, in place */
    float *params, *grads;
    /* under --bf16 / --fp16 the distributed optimizer all-gathers the
     * 16-bit weights (weight_bytes each) instead of params */
    char *weights;
    size_t weight_bytes;
    tsr_bucket_layout layout;
    tsr_comm_request **grad_reqs;  /* bucket_count, reduction order */
    tsr_comm_request **param_reqs; /* bucket_count, reduction order */
    size_t started;                /* buckets started this iteration */
    size_t started_early, syncs;   /* started during backward, over all iterations */
    tsr_status failure;            /* first failure of a callback (grads_ready) */
};

/* The k-th bucket to reduce. */
const tsr_grad_bucket *tsr_dp_bucket(const tsr_dp *dp, size_t k);
/* The communicator that reduces a bucket; NULL when its group is this
 * rank alone (nothing to exchange). */
tsr_comm *tsr_dp_bucket_comm(const tsr_dp *dp, const tsr_grad_bucket *bucket);

/* --grad-reduce-in-bf16: n fp32 values at x rounded to bf16 into the
 * first half of their own bytes; and n bf16 values at src widened into
 * fp32 at dst, which may overlap src from above (dst >= src) */
void tsr_dp_bucket_to_bf16(float *x, size_t n);
void tsr_dp_bucket_from_bf16(float *dst, const uint16_t *src, size_t n);

/* dist_optimizer.c */
tsr_status tsr_dist_opt_reduce_bucket(tsr_dp *dp, size_t k);
tsr_status tsr_dist_opt_start_param_sync(void *ctx);
tsr_status tsr_dist_opt_finish_param_sync(void *ctx);

#endif /* TSR_SHARDING_DP_INTERNAL_H */
