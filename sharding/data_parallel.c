/*
 * data_parallel.c - bucketed, overlapped gradient reduction over the
 * grid's data-parallel group, and the trainer's hooks (data_parallel.h).
 *
 * Overlap on the MPI backend: MPI advances a non-blocking collective only
 * inside MPI calls, so each model callback also tests the oldest bucket in
 * flight, which lets the reductions progress between layers of backward.
 */
#include "dp_internal.h"

#include <stdlib.h>
#include <string.h>

#include "tessera/kernels.h"
#include "tessera/log.h"

const tsr_grad_bucket *tsr_dp_bucket(const tsr_dp *dp, size_t k)
{
    return &dp->layout.buckets[dp->layout.bucket_count - 1 - k];
}

tsr_comm *tsr_dp_bucket_comm(const tsr_dp *dp, const tsr_grad_bucket *bucket)
{
    if (tsr_bucket_group_size(&dp->layout, bucket) <= 1)
        return NULL;
    return bucket->expert ? dp->expert_comm : dp->comm;
}

/* In place, one element at a time: element i's two bytes land at or below
 * the four still to be read, so going up never overwrites an unread
 * value; going back down, the same holds the other way round. */
void tsr_dp_bucket_to_bf16(float *x, size_t n)
{
    uint16_t *h = (uint16_t *)(void *)x;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        h[i] = tsr_bf16_of_float(v);
    }
}

void tsr_dp_bucket_from_bf16(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        float v = tsr_float_of_bf16(src[i]);
        dst[i] = v;
    }
}

static tsr_status start_bucket(tsr_dp *dp, size_t k)
{
    const tsr_grad_bucket *b = tsr_dp_bucket(dp, k);
    tsr_comm *comm = tsr_dp_bucket_comm(dp, b);
    if (comm == NULL) /* experts no other rank holds */
        return TSR_OK;
    if (dp->sharded)
        return tsr_dist_opt_reduce_bucket(dp, k);
    float *x = dp->grads + b->offset;
    if (dp->bf16) {
        tsr_dp_bucket_to_bf16(x, b->count);
        return tsr_comm_allreduce(x, x, b->count, TSR_COMM_BF16, TSR_COMM_SUM, comm,
                                  &dp->grad_reqs[k]);
    }
    return tsr_comm_allreduce(x, x, b->count, TSR_COMM_FP32, TSR_COMM_SUM, comm,
                              &dp->grad_reqs[k]);
}

/* Lets MPI progress the oldest reduction still in flight. */
static tsr_status progress(tsr_dp *dp)
{
    for (size_t k = 0; k < dp->started; k++) {
        if (dp->grad_reqs[k] == NULL)
            continue;
        bool done = false;
        return tsr_comm_test(&dp->grad_reqs[k], &done);
    }
    return TSR_OK;
}

static void grads_ready(void *ctx, size_t from)
{
    tsr_dp *dp = ctx;
    if (dp->failure != TSR_OK)
        return;
    size_t ready = tsr_bucket_layout_ready(&dp->layout, from);
    tsr_status st = TSR_OK;
    while (st == TSR_OK && dp->started < ready)
        st = start_bucket(dp, dp->started++);
    if (st == TSR_OK)
        st = progress(dp);
    dp->failure = st;
}

static tsr_status finish_grad_sync(void *ctx)
{
    tsr_dp *dp = ctx;
    tsr_status st = dp->failure;
    dp->started_early += dp->started;
    dp->syncs++;
    while (st == TSR_OK && dp->started < dp->layout.bucket_count)
        st = start_bucket(dp, dp->started++);
    /* wait for whatever started, even after a failure: buffers must not
     * stay lent to the communicator */
    tsr_status wait = tsr_comm_wait_all(dp->grad_reqs, dp->started);
    for (size_t k = 0; dp->bf16 && k < dp->started; k++) { /* back to fp32 */
        const tsr_grad_bucket *b = tsr_dp_bucket(dp, k);
        if (tsr_dp_bucket_comm(dp, b) == NULL)
            continue;
        size_t slice = dp->sharded ? b->count / (size_t)tsr_bucket_group_size(&dp->layout, b)
                                   : b->count;
        size_t first = dp->sharded ? (size_t)tsr_bucket_group_rank(&dp->layout, b) * slice : 0;
        float *x = dp->grads + b->offset; /* slice r's bf16 values at r * slice halves */
        tsr_dp_bucket_from_bf16(x + first, (const uint16_t *)(void *)x + first, slice);
    }
    dp->started = 0;
    dp->failure = TSR_OK;
    return st != TSR_OK ? st : wait;
}

static tsr_status sum_scalars(void *ctx, double *values, int count)
{
    tsr_dp *dp = ctx;
    return tsr_comm_allreduce(values, values, (size_t)count, TSR_COMM_FP64, TSR_COMM_SUM,
                              dp->comm, NULL);
}

static tsr_status sum_world(void *ctx, double *values, int count)
{
    tsr_dp *dp = ctx;
    return tsr_comm_allreduce(values, values, (size_t)count, TSR_COMM_FP64, TSR_COMM_SUM,
                              dp->world, NULL);
}

static void log_layout(const tsr_dp *dp, const tsr_config *cfg)
{
    const tsr_bucket_layout *l = &dp->layout;
    size_t largest = 0, owned = 0;
    for (size_t i = 0; i < l->bucket_count; i++) {
        largest = l->buckets[i].count > largest ? l->buckets[i].count : largest;
        owned += l->owned[i].count;
    }
    tsr_log_once(TSR_LOG_INFO,
                 "data parallel: %d ranks, %zu gradient bucket(s) of up to %zu elements, %s; "
                 "rank 0 owns %zu of %zu elements%s; overlap: grad reduce %s, param gather %s; "
                 "gradients reduced in %s",
                 l->dp_size, l->bucket_count, largest,
                 dp->sharded ? "reduce-scattered (distributed optimizer)" : "all-reduced", owned,
                 l->padded_count, dp->sharded ? " and their Adam state" : "",
                 cfg->overlap_grad_reduce ? "on" : "off", dp->overlap_param_gather ? "on" : "off",
                 dp->bf16 ? "bf16" : "fp32");
}

tsr_status tsr_dp_create(const tsr_config *cfg, tsr_grid *grid, const tsr_model *model,
                         tsr_dp **out)
{
    *out = NULL;
    tsr_dp *dp = calloc(1, sizeof *dp);
    if (dp == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for the data-parallel state");
    dp->grid = grid;
    dp->comm = tsr_grid_comm(grid, TSR_GROUP_DP);
    dp->world = tsr_grid_world(grid);
    int size = tsr_grid_dp_size(grid), rank = tsr_grid_dp_rank(grid);
    bool experts = model->expert_count > 0;
    dp->expert_comm = experts ? tsr_grid_comm(grid, TSR_GROUP_EXPERT_DP) : dp->comm;
    dp->sharded = cfg->use_distributed_optimizer && size > 1;
    dp->overlap_param_gather = cfg->overlap_param_gather;
    dp->bf16 = cfg->grad_reduce_in_bf16;
    dp->params = model->params;
    dp->grads = model->grads;
    tsr_status st = tsr_bucket_layout_compute_experts(
        model->param_count, model->expert_count, size, rank,
        experts ? tsr_grid_expert_dp_size(grid) : size,
        experts ? tsr_grid_expert_dp_rank(grid) : rank, cfg->ddp_bucket_size, dp->sharded,
        &dp->layout);
    size_t n = dp->layout.bucket_count;
    if (st == TSR_OK && n > 0) {
        dp->grad_reqs = calloc(n, sizeof *dp->grad_reqs);
        dp->param_reqs = calloc(n, sizeof *dp->param_reqs);
        if (dp->grad_reqs == NULL || dp->param_reqs == NULL)
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for %zu bucket requests",
                               n);
    }
    if (st != TSR_OK) {
        tsr_dp_destroy(dp);
        return st;
    }
    if (size > 1)
        log_layout(dp, cfg);
    *out = dp;
    return TSR_OK;
}

void tsr_dp_destroy(tsr_dp *dp)
{
    if (dp == NULL)
        return;
    size_t n = dp->layout.bucket_count;
    if (dp->syncs > 0)
        tsr_log_once(TSR_LOG_INFO,
                     "data parallel: %.1f of %zu gradient buckets per iteration started during "
                     "backward",
                     (double)dp->started_early / (double)dp->syncs, n);
    if (dp->grad_reqs != NULL)
        tsr_comm_wait_all(dp->grad_reqs, n);
    if (dp->param_reqs != NULL)
        tsr_comm_wait_all(dp->param_reqs, n);
    free(dp->grad_reqs);
    free(dp->param_reqs);
    tsr_bucket_layout_free(&dp->layout);
    free(dp);
}

void tsr_dp_fill_hooks(tsr_dp *dp, tsr_trainer_hooks *hooks)
{
    int size = dp->layout.dp_size;
    hooks->ctx = dp;
    hooks->dp_rank = dp->layout.dp_rank;
    hooks->dp_size = size;
    hooks->expert_dp_size = dp->layout.expert_dp_size;
    hooks->sum_world = tsr_comm_size(dp->world) > 1 ? sum_world : NULL;
    if (size <= 1)
        return;
    hooks->shard = tsr_bucket_layout_shard(&dp->layout);
    hooks->grads_ready = grads_ready;
    hooks->finish_grad_sync = finish_grad_sync;
    hooks->sum_scalars = sum_scalars;
    if (dp->sharded) {
        hooks->start_param_sync = tsr_dist_opt_start_param_sync;
        hooks->finish_param_sync = tsr_dist_opt_finish_param_sync;
    }
}

void tsr_dp_gather_weights(tsr_dp *dp, void *weights, size_t element_bytes)
{
    dp->weights = weights;
    dp->weight_bytes = element_bytes;
}

const tsr_bucket_layout *tsr_dp_layout(const tsr_dp *dp)
{
    return &dp->layout;
}
