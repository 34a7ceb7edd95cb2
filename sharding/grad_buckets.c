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

tsr_status tsr_bucket_layout_compute(size_t param_count, int dp_size, int dp_rank,
                                     int64_t bucket_size, bool even, tsr_bucket_layout *out)
{
    memset(out, 0, sizeof *out);
    if (dp_size < 1 || dp_rank < 0 || dp_rank >= dp_size)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "data-parallel rank %d of %d is not a rank",
                             dp_rank, dp_size);
    size_t padded = even ? tsr_shard_padded_count(param_count, dp_size) : param_count;
    size_t size = bucket_size > 0 && (size_t)bucket_size < padded ? (size_t)bucket_size : padded;
    if (even) {
        size_t unit = (size_t)dp_size * TSR_SHARD_ALIGN_FLOATS;
        size = (size + unit - 1) / unit * unit;
    }
    size_t count = size > 0 ? (padded + size - 1) / size : 0;
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
    out->even = even;
    out->bucket_count = count;
    if (count == 0)
        return TSR_OK;
    out->buckets = calloc(count, sizeof *out->buckets);
    out->owned = calloc(count, sizeof *out->owned);
    if (out->buckets == NULL || out->owned == NULL) {
        tsr_bucket_layout_free(out);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for %zu gradient buckets", count);
    }
    size_t state = 0;
    for (size_t k = 0; k < count; k++) { /* k-th to reduce: from the end */
        size_t hi = padded - k * size;
        size_t lo = hi > size ? hi - size : 0;
        size_t i = count - 1 - k;
        out->buckets[i] = (tsr_grad_bucket){lo, hi - lo};
    }
    for (size_t i = 0; i < count; i++) {
        size_t lo, hi;
        tsr_bucket_slice(&out->buckets[i], dp_size, dp_rank, &lo, &hi);
        out->owned[i] = (tsr_shard_range){lo, hi - lo, even ? state : lo};
        state += hi - lo;
    }
    return TSR_OK;
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
