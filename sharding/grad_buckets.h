/*
 * grad_buckets.h - how the flat gradient buffer is cut into buckets for
 * data-parallel reduction, and which slice of each bucket a rank owns.
 * Pure arithmetic (no communication), so tests check it exhaustively.
 *
 * Buckets are cut from the END of the buffer: parameters lie in forward
 * order, backward produces the last layers' gradients first, so the last
 * bucket is the first complete and the first to be reduced. The reduction
 * order is therefore bucket_count-1 down to 0 in memory order; "the k-th
 * bucket to reduce" is buckets[bucket_count - 1 - k].
 *
 * Each data-parallel rank owns one slice of every bucket (slices of rank
 * r across buckets make up its shard). Under the distributed optimizer
 * (even slices, reduce-scatter) the buffer is padded to
 * tsr_shard_padded_count() and every bucket is a multiple of
 * dp x TSR_SHARD_ALIGN_FLOATS, so all slices are equal and 64-byte
 * aligned; with one bucket (the default --ddp-bucket-size exceeds most
 * models) a rank's shard is one contiguous range of the buffer. Without
 * it (all-reduce) the slices only decide who counts an element in the
 * gradient norm and who writes it to a checkpoint, and may differ by one.
 *
 * Called by sharding/data_parallel.c and tests.
 */
#ifndef TSR_SHARDING_GRAD_BUCKETS_H
#define TSR_SHARDING_GRAD_BUCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"
#include "train/optimizer.h"

/* More buckets than this is a mistake in --ddp-bucket-size, not a plan. */
#define TSR_MAX_GRAD_BUCKETS 65536

typedef struct tsr_grad_bucket {
    size_t offset, count; /* [offset, offset + count) of the padded buffer */
    bool expert;          /* in the expert region: over the expert-data-parallel group */
} tsr_grad_bucket;

typedef struct tsr_bucket_layout {
    size_t param_count;  /* the model's */
    size_t padded_count; /* what the reductions cover */
    int dp_size, dp_rank;
    size_t expert_count; /* the expert region [0, expert_count) (expert parallelism) */
    int expert_dp_size, expert_dp_rank; /* its group */
    bool even;           /* equal slices (distributed optimizer) */
    size_t bucket_count;
    tsr_grad_bucket *buckets; /* memory order */
    tsr_shard_range *owned;   /* this rank's slice of each bucket, memory order */
} tsr_bucket_layout;

/* Cuts param_count elements into buckets of bucket_size (<= 0: one
 * bucket) for rank dp_rank of dp_size. even: the distributed optimizer's
 * padded, equal slices, owned state packed from 0; otherwise state offsets
 * equal flat offsets. TSR_ERR_INVALID_ARG if the buckets would number
 * more than TSR_MAX_GRAD_BUCKETS. */
tsr_status tsr_bucket_layout_compute(size_t param_count, int dp_size, int dp_rank,
                                     int64_t bucket_size, bool even, tsr_bucket_layout *out);
/* The same with an expert region [0, expert_count) (a multiple of
 * dp_size x TSR_SHARD_ALIGN_FLOATS) whose buckets are cut apart from the
 * dense ones and sliced over the expert-data-parallel group (edp_size
 * ranks, this one edp_rank); they are the last to reduce. */
tsr_status tsr_bucket_layout_compute_experts(size_t param_count, size_t expert_count, int dp_size,
                                             int dp_rank, int edp_size, int edp_rank,
                                             int64_t bucket_size, bool even,
                                             tsr_bucket_layout *out);
void tsr_bucket_layout_free(tsr_bucket_layout *layout);

/* Rank r's slice [*lo, *hi) of a bucket. */
void tsr_bucket_slice(const tsr_grad_bucket *bucket, int dp_size, int rank, size_t *lo,
                      size_t *hi);
/* The size of / this rank's rank in the group that reduces a bucket. */
int tsr_bucket_group_size(const tsr_bucket_layout *layout, const tsr_grad_bucket *bucket);
int tsr_bucket_group_rank(const tsr_bucket_layout *layout, const tsr_grad_bucket *bucket);

/* How many buckets, in reduction order, are complete once every gradient
 * at flat index >= from is: those that start at or after from. */
size_t tsr_bucket_layout_ready(const tsr_bucket_layout *layout, size_t from);

/* The shard view of the layout, for the trainer and checkpoints. */
tsr_param_shard tsr_bucket_layout_shard(const tsr_bucket_layout *layout);

#endif /* TSR_SHARDING_GRAD_BUCKETS_H */
