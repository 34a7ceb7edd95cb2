/*
 * grad_buckets.c - bucket boundaries and owned slices (grad_buckets.h).
 */
#include "grad_buckets.h"

#include <stdlib.h>
#include <string.h>

void tsr_bucket_slice(const tsr_grad_bucket *bucket, int dp_size, int rank, size_t *lo,
                      size_t *hi)
{
    /* floor(count * r / dp): equal when dp divides count, else off by one */
    size_t dp = (size_t)dp_size, r = (size_t)rank;
    *lo = bucket->offset + bucket->count / dp * r + bucket->count % dp * r / dp;
    *hi = bucket->offset + bucket->count / dp * (r + 1) + bucket->count % dp * (r + 1) / dp;
}

int tsr_bucket_group_size(const tsr_bucket_layout *layout, const tsr_grad_bucket *bucket)
{
    return bucket->expert ? layout->expert_dp_size : layout->dp_size;
}

int tsr_bucket_group_rank(const tsr_bucket_layout *layout, const tsr_grad_bucket *bucket)
{
    return bucket->expert ? layout->expert_dp_rank : layout->dp_rank;
}

/* Bucket size for a group of `group` ranks: equal slices, each aligned,
 * under the distributed optimizer. */
static size_t bucket_floats(int64_t bucket_size, size_t region, int group, bool even)
{
    size_t size = bucket_size > 0 && (size_t)bucket_size < region ? (size_t)bucket_size : region;
    if (even) {
        size_t unit = (size_t)group * TSR_SHARD_ALIGN_FLOATS;
        size = (size + unit - 1) / unit * unit;
    }
    return size;
}

static size_t count_of(size_t region, size_t size)
{
    return size > 0 ? (region + size - 1) / size : 0;
}

/* Cuts [lo, hi) from its end into buckets[first ..] (memory order). */
static void cut_region(tsr_grad_bucket *buckets, size_t lo, size_t hi, size_t size, size_t count,
                       bool expert)
{
    for (size_t k = 0; k < count; k++) {
        size_t b_hi = hi - k * size;
        size_t b_lo = b_hi - lo > size ? b_hi - size : lo;
        buckets[count - 1 - k] = (tsr_grad_bucket){b_lo, b_hi - b_lo, expert};
    }
}

tsr_status tsr_bucket_layout_compute_experts(size_t param_count, size_t expert_count, int dp_size,
                                             int dp_rank, int edp_size, int edp_rank,
                                             int64_t bucket_size, bool even,
                                             tsr_bucket_layout *out)
{
    memset(out, 0, sizeof *out);
    if (dp_size < 1 || dp_rank < 0 || dp_rank >= dp_size)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "data-parallel rank %d of %d is not a rank",
                             dp_rank, dp_size);
    if (expert_count > 0 && (edp_size < 1 || edp_rank < 0 || edp_rank >= edp_size ||
                             dp_size % edp_size != 0 || expert_count > param_count ||
                             expert_count % ((size_t)dp_size * TSR_SHARD_ALIGN_FLOATS) != 0))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "an expert region of %zu of %zu floats for expert-data-parallel "
                             "rank %d of %d (data-parallel size %d) does not cut into slices",
                             expert_count, param_count, edp_rank, edp_size, dp_size);
    size_t padded = even ? tsr_shard_padded_count(param_count, dp_size) : param_count;
    size_t dense = padded - expert_count;
    size_t dense_size = bucket_floats(bucket_size, dense, dp_size, even);
    size_t expert_size = bucket_floats(bucket_size, expert_count, edp_size, even);
    size_t dense_n = count_of(dense, dense_size), expert_n = count_of(expert_count, expert_size);
    size_t count = dense_n + expert_n;
    if (count > TSR_MAX_GRAD_BUCKETS)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--ddp-bucket-size %lld cuts %zu gradients into %zu buckets (at "
                             "most %d); use a bucket size of at least %zu",
                             (long long)bucket_size, padded, count, TSR_MAX_GRAD_BUCKETS,
                             (padded + TSR_MAX_GRAD_BUCKETS - 1) / TSR_MAX_GRAD_BUCKETS);
    out->param_count = param_count;
    out->padded_count = padded;
    out->dp_size = dp_size;
    out->dp_rank = dp_rank;
    out->expert_count = expert_count;
    out->expert_dp_size = expert_count > 0 ? edp_size : dp_size;
    out->expert_dp_rank = expert_count > 0 ? edp_rank : dp_rank;
    out->even = even;
    out->bucket_count = count;
    if (count == 0)
        return TSR_OK;
    out->buckets = calloc(count, sizeof *out->buckets);
    out->owned = calloc(count, sizeof *out->owned);
    if (out->buckets == NULL || out->owned == NULL) {
        tsr_bucket_layout_free(out);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for %zu gradient buckets",
                             count);
    }
    cut_region(out->buckets, 0, expert_count, expert_size, expert_n, true);
    cut_region(out->buckets + expert_n, expert_count, padded, dense_size, dense_n, false);
    size_t state = 0;
    for (size_t i = 0; i < count; i++) {
        size_t lo, hi;
        const tsr_grad_bucket *b = &out->buckets[i];
        tsr_bucket_slice(b, tsr_bucket_group_size(out, b), tsr_bucket_group_rank(out, b), &lo,
                         &hi);
        out->owned[i] = (tsr_shard_range){lo, hi - lo, even ? state : lo};
        state += hi - lo;
    }
    return TSR_OK;
}

tsr_status tsr_bucket_layout_compute(size_t param_count, int dp_size, int dp_rank,
                                     int64_t bucket_size, bool even, tsr_bucket_layout *out)
{
    return tsr_bucket_layout_compute_experts(param_count, 0, dp_size, dp_rank, 1, 0, bucket_size,
                                             even, out);
}

void tsr_bucket_layout_free(tsr_bucket_layout *layout)
{
    free(layout->buckets);
    free(layout->owned);
    layout->buckets = NULL;
    layout->owned = NULL;
    layout->bucket_count = 0;
}

size_t tsr_bucket_layout_ready(const tsr_bucket_layout *layout, size_t from)
{
    size_t ready = 0;
    for (size_t i = layout->bucket_count; i > 0 && layout->buckets[i - 1].offset >= from; i--)
        ready++;
    return ready;
}

tsr_param_shard tsr_bucket_layout_shard(const tsr_bucket_layout *layout)
{
    tsr_param_shard shard = {layout->owned, layout->bucket_count, layout->even};
    return shard;
}
