/*
 * dist_optimizer.c - the distributed optimizer's communication (ZeRO-1/2
 * as Megatron's --use-distributed-optimizer): each bucket is
 * reduce-scattered, so rank r ends with the summed gradients of its slice
 * only, and after AdamW has updated those slices they are all-gathered
 * back into every rank's full parameter buffer (under --bf16 / --fp16 its
 * 16-bit weights: the fp32 master stays sharded, as Megatron's).
 *
 * Both are in place on the model's flat buffers (padded so that every
 * bucket splits into equal slices): slice r of a bucket is the block
 * reduce-scatter delivers to rank r and the block all-gather takes from
 * it. The gradients outside a rank's slices are left undefined.
 *
 * --overlap-param-gather: the all-gathers start right after the step and
 * are completed by finish_param_sync, which the trainer calls after
 * loading the next iteration's first micro batch (and before evaluation,
 * saving and the end of the run). The GPT runs its forward as one call,
 * so the gather is not waited for layer by layer: it overlaps the logging,
 * evaluation check and data loading between two steps, no more.
 */
#include "dp_internal.h"

tsr_status tsr_dist_opt_reduce_bucket(tsr_dp *dp, size_t k)
{
    const tsr_grad_bucket *b = tsr_dp_bucket(dp, k);
    size_t slice = b->count / (size_t)tsr_bucket_group_size(&dp->layout, b);
    size_t rank = (size_t)tsr_bucket_group_rank(&dp->layout, b);
    float *x = dp->grads + b->offset;
    if (dp->bf16) { /* the bucket's bf16 values in its first half; slice r at r * slice */
        tsr_dp_bucket_to_bf16(x, b->count);
        uint16_t *h = (uint16_t *)(void *)x;
        return tsr_comm_reduce_scatter(h, h + rank * slice, slice, TSR_COMM_BF16, TSR_COMM_SUM,
                                       tsr_dp_bucket_comm(dp, b), &dp->grad_reqs[k]);
    }
    return tsr_comm_reduce_scatter(x, x + rank * slice, slice, TSR_COMM_FP32, TSR_COMM_SUM,
                                   tsr_dp_bucket_comm(dp, b), &dp->grad_reqs[k]);
}

tsr_status tsr_dist_opt_finish_param_sync(void *ctx)
{
    tsr_dp *dp = ctx;
    return tsr_comm_wait_all(dp->param_reqs, dp->layout.bucket_count);
}

tsr_status tsr_dist_opt_start_param_sync(void *ctx)
{
    tsr_dp *dp = ctx;
    tsr_status st = TSR_OK;
    for (size_t k = 0; k < dp->layout.bucket_count && st == TSR_OK; k++) {
        const tsr_grad_bucket *b = tsr_dp_bucket(dp, k);
        tsr_comm *comm = tsr_dp_bucket_comm(dp, b);
        if (comm == NULL)
            continue; /* this rank updated the whole bucket */
        size_t slice = b->count / (size_t)tsr_bucket_group_size(&dp->layout, b);
        size_t rank = (size_t)tsr_bucket_group_rank(&dp->layout, b);
        if (dp->weights != NULL) { /* the 16-bit copies (bf16 or fp16 bits) */
            size_t e = dp->weight_bytes;
            char *w = dp->weights + b->offset * e;
            /* a gather moves bits: any 2-byte type carries fp16's */
            st = tsr_comm_allgather(w + rank * slice * e, w, slice,
                                    e == 2 ? TSR_COMM_BF16 : TSR_COMM_FP32, comm,
                                    &dp->param_reqs[k]);
            continue;
        }
        float *x = dp->params + b->offset;
        st = tsr_comm_allgather(x + rank * slice, x, slice, TSR_COMM_FP32, comm,
                                &dp->param_reqs[k]);
    }
    if (st != TSR_OK || !dp->overlap_param_gather) {
        tsr_status wait = tsr_dist_opt_finish_param_sync(dp);
        return st != TSR_OK ? st : wait;
    }
    return TSR_OK;
}
