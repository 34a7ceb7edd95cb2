/*
 * optimizer.h - the optimizer step over this rank's share of the flat
 * parameter buffer: gradient sum of squares (for the global norm), AdamW
 * with per-span weight decay, and the arithmetic of data-parallel shards.
 *
 * A model keeps all its parameters and gradients in one flat fp32 buffer
 * (model.h). Under data parallelism a rank "owns" some ranges of that
 * buffer: it counts their gradients in the global norm and writes them to
 * checkpoints, so that every element is counted and written by exactly one
 * data-parallel replica. With the distributed optimizer it also holds Adam
 * moments for its owned ranges only (packed, in range order) and updates
 * only them; otherwise every rank holds moments for, and updates, the
 * whole buffer.
 *
 * Invariants: ranges are sorted by offset, disjoint, and lie inside the
 * (padded) buffer; with a sharded state, state_offset packs the ranges
 * back to back from 0. Called by the trainer (runtime/train/trainer.c),
 * checkpointing (runtime/checkpoint/) and sharding/ (which computes the
 * ranges).
 */
#ifndef TSR_RUNTIME_TRAIN_OPTIMIZER_H
#define TSR_RUNTIME_TRAIN_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "tessera/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Elements [offset, offset + count) of the flat buffer; its Adam moments
 * start at state_offset in the moment arrays. */
typedef struct tsr_shard_range {
    size_t offset, count;
    size_t state_offset;
} tsr_shard_range;

/* What this rank owns. ranges == NULL: everything (one data-parallel
 * rank), state never sharded. */
typedef struct tsr_param_shard {
    const tsr_shard_range *ranges;
    size_t range_count;
    bool sharded_state; /* distributed optimizer: moments and updates only for the ranges */
} tsr_param_shard;

/* Distributed-optimizer slices are multiples of this many floats (64
 * bytes), so every rank's slice starts cache-line and SIMD aligned. */
#define TSR_SHARD_ALIGN_FLOATS 16

/* The flat buffer length a distributed optimizer over dp_size ranks works
 * on: param_count rounded up to a multiple of dp_size x
 * TSR_SHARD_ALIGN_FLOATS (param_count itself when dp_size <= 1). */
size_t tsr_shard_padded_count(size_t param_count, int dp_size);

/* Floats of each Adam moment a rank holds under the distributed
 * optimizer when the first expert_count floats (a multiple of dp_size x
 * TSR_SHARD_ALIGN_FLOATS: expert parallelism) are sharded over edp_size
 * ranks and the rest over dp_size. */
size_t tsr_shard_state_count(size_t param_count, size_t expert_count, int dp_size, int edp_size);

/* Floats of each Adam moment this rank holds. */
size_t tsr_shard_state_floats(const tsr_param_shard *shard, size_t param_count);

/* Sum of squares of the gradients this rank counts: those in its owned
 * ranges that also lie in a block the model marks as written by this rank
 * (tensor desc writer == true: one tensor-parallel replica). A model
 * without tensor descriptors counts every owned element. Summed over every
 * rank, each parameter element is counted exactly once. */
double tsr_optimizer_grad_sumsq(const tsr_model *model, const tsr_param_shard *shard);

/* The walks both functions below make, piece by piece in a fixed order,
 * for a device that runs the same arithmetic on its own copy of the
 * buffers (the offsets are the same).
 * norm: gradient elements [offset, offset + count) this rank counts, in
 * owned range `range` (the sum of squares adds each range's pieces, then
 * the ranges' sums, in order); adamw: elements [offset, offset + count)
 * of the flat buffer this rank updates, their moments (and master) from
 * state, with the span's weight decay or none. */
typedef void (*tsr_norm_piece_fn)(void *ctx, size_t range, size_t offset, size_t count);
typedef void (*tsr_adamw_piece_fn)(void *ctx, size_t offset, size_t state, size_t count,
                                   bool decay);
void tsr_optimizer_norm_pieces(const tsr_model *model, const tsr_param_shard *shard,
                               tsr_norm_piece_fn fn, void *ctx);
void tsr_optimizer_adamw_pieces(const tsr_model *model, const tsr_param_shard *shard,
                                tsr_adamw_piece_fn fn, void *ctx);
/* The sum of squares from the pieces' own sums (sums[i]: piece i's, in the
 * walk's order), added as tsr_optimizer_grad_sumsq adds them, so that a
 * device's partial sums combine in the CPU's order. */
double tsr_optimizer_combine_sumsq(const tsr_model *model, const tsr_param_shard *shard,
                                   const double *sums);
/* How many pieces the norm's walk makes (a device keeps a partial sum for
 * each). */
size_t tsr_optimizer_norm_piece_count(const tsr_model *model, const tsr_param_shard *shard);

typedef struct tsr_adamw_args {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;     /* from 1 */
    float grad_scale; /* clipping coefficient, 1: none */
} tsr_adamw_args;

/* AdamW over every element this rank updates (the owned ranges with a
 * sharded state, the whole buffer otherwise), each model span with its own
 * weight decay, spans cut at range boundaries. master (the fp32 weights
 * under 16 bits; NULL: the model's params are), m and v are indexed as
 * tsr_shard_range.state_offset says (by flat index when not sharded). */
void tsr_optimizer_adamw(const tsr_model *model, const tsr_param_shard *shard, float *master,
                         float *m, float *v, const tsr_adamw_args *args);

#ifdef __cplusplus
}
#endif

#endif /* TSR_RUNTIME_TRAIN_OPTIMIZER_H */
