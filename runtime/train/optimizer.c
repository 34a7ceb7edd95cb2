/*
 * optimizer.c - the gradient sum of squares and AdamW over this rank's
 * share of the flat buffer (see optimizer.h).
 *
 * Both walk (range x block) intersections, the pieces: the owned ranges
 * against the model's tensor blocks for the norm, the updated ranges
 * against the weight-decay spans for AdamW. The CPU's kernels run on
 * each piece here; a device runs its own on the same pieces. Tables are
 * small (hundreds of tensors, one range per gradient bucket), so plain
 * double loops are cheap next to the arithmetic they drive.
 */
#include "optimizer.h"

#include "tessera/kernels.h"

size_t tsr_shard_padded_count(size_t param_count, int dp_size)
{
    if (dp_size <= 1)
        return param_count;
    size_t unit = (size_t)dp_size * TSR_SHARD_ALIGN_FLOATS;
    return (param_count + unit - 1) / unit * unit;
}

size_t tsr_shard_state_count(size_t param_count, size_t expert_count, int dp_size, int edp_size)
{
    size_t padded = tsr_shard_padded_count(param_count, dp_size);
    size_t dense = (padded - expert_count) / (size_t)(dp_size > 1 ? dp_size : 1);
    return dense + expert_count / (size_t)(edp_size > 1 ? edp_size : 1);
}

size_t tsr_shard_state_floats(const tsr_param_shard *shard, size_t param_count)
{
    if (shard == NULL || shard->ranges == NULL || !shard->sharded_state)
        return param_count;
    size_t total = 0;
    for (size_t i = 0; i < shard->range_count; i++)
        total += shard->ranges[i].count;
    return total;
}

/* [*lo, *hi) = [a0, a1) intersected with [b0, b1); false if empty. */
static bool intersect(size_t a0, size_t a1, size_t b0, size_t b1, size_t *lo, size_t *hi)
{
    *lo = a0 > b0 ? a0 : b0;
    *hi = a1 < b1 ? a1 : b1;
    return *lo < *hi;
}

/* the norm's pieces of owned range `range`, [r0, r1) */
static void range_norm_pieces(const tsr_model *model, size_t range, size_t r0, size_t r1,
                              tsr_norm_piece_fn fn, void *ctx)
{
    size_t lo, hi;
    if (model->tensors == NULL || model->tensor_count == 0) {
        if (intersect(r0, r1, 0, model->param_count, &lo, &hi))
            fn(ctx, range, lo, hi - lo);
        return;
    }
    /* frozen tensors have no gradient; their offsets are into the frozen array */
    for (size_t i = 0; i < model->tensor_count; i++) {
        const tsr_tensor_desc *t = &model->tensors[i];
        size_t size = (size_t)(t->row_count * t->col_count);
        if (t->writer && !t->frozen && size > 0 &&
            intersect(r0, r1, t->offset, t->offset + size, &lo, &hi))
            fn(ctx, range, lo, hi - lo);
    }
}

void tsr_optimizer_norm_pieces(const tsr_model *model, const tsr_param_shard *shard,
                               tsr_norm_piece_fn fn, void *ctx)
{
    if (shard == NULL || shard->ranges == NULL) {
        range_norm_pieces(model, 0, 0, model->param_count, fn, ctx);
        return;
    }
    for (size_t i = 0; i < shard->range_count; i++) {
        const tsr_shard_range *r = &shard->ranges[i];
        range_norm_pieces(model, i, r->offset, r->offset + r->count, fn, ctx);
    }
}

static void count_piece(void *ctx, size_t range, size_t offset, size_t count)
{
    (void)range;
    (void)offset;
    (void)count;
    ++*(size_t *)ctx;
}

size_t tsr_optimizer_norm_piece_count(const tsr_model *model, const tsr_param_shard *shard)
{
    size_t pieces = 0;
    tsr_optimizer_norm_pieces(model, shard, count_piece, &pieces);
    return pieces;
}

/* Each range's pieces add into the range's sum, which is added to the
 * total when the next range starts: the order the sum has always had. */
typedef struct sumsq_walk {
    const float *grads; /* NULL: the pieces' sums are given */
    const double *sums;
    size_t next, range;
    double range_sum, total;
} sumsq_walk;

static void add_sumsq(void *ctx, size_t range, size_t offset, size_t count)
{
    sumsq_walk *w = ctx;
    if (range != w->range) {
        w->total += w->range_sum;
        w->range_sum = 0.0;
        w->range = range;
    }
    w->range_sum += w->grads != NULL ? tsr_sum_squares(w->grads + offset, (int64_t)count)
                                     : w->sums[w->next++];
}

static double sumsq_of(const tsr_model *model, const tsr_param_shard *shard, sumsq_walk *w)
{
    tsr_optimizer_norm_pieces(model, shard, add_sumsq, w);
    return w->total + w->range_sum;
}

double tsr_optimizer_grad_sumsq(const tsr_model *model, const tsr_param_shard *shard)
{
    sumsq_walk w = {model->grads, NULL, 0, 0, 0.0, 0.0};
    return sumsq_of(model, shard, &w);
}

double tsr_optimizer_combine_sumsq(const tsr_model *model, const tsr_param_shard *shard,
                                   const double *sums)
{
    sumsq_walk w = {NULL, sums, 0, 0, 0.0, 0.0};
    return sumsq_of(model, shard, &w);
}

static void range_adamw_pieces(const tsr_model *model, const tsr_shard_range *r,
                               tsr_adamw_piece_fn fn, void *ctx)
{
    for (size_t s = 0; s < model->span_count; s++) {
        const tsr_param_span *span = &model->spans[s];
        size_t lo, hi;
        if (intersect(r->offset, r->offset + r->count, span->offset, span->offset + span->count,
                      &lo, &hi))
            fn(ctx, lo, r->state_offset + (lo - r->offset), hi - lo, span->decay);
    }
}

void tsr_optimizer_adamw_pieces(const tsr_model *model, const tsr_param_shard *shard,
                                tsr_adamw_piece_fn fn, void *ctx)
{
    if (shard == NULL || shard->ranges == NULL || !shard->sharded_state) {
        tsr_shard_range all = {0, model->param_count, 0};
        range_adamw_pieces(model, &all, fn, ctx);
        return;
    }
    for (size_t i = 0; i < shard->range_count; i++)
        range_adamw_pieces(model, &shard->ranges[i], fn, ctx);
}

typedef struct adamw_walk {
    const tsr_model *model;
    float *master, *m, *v;
    const tsr_adamw_args *a;
} adamw_walk;

static void update_piece(void *ctx, size_t offset, size_t state, size_t count, bool decay)
{
    const adamw_walk *w = ctx;
    const tsr_adamw_args *a = w->a;
    float *weights = w->master != NULL ? w->master + state : w->model->params + offset;
    tsr_adamw_update(weights, w->model->grads + offset, w->m + state, w->v + state,
                     (int64_t)count, a->lr, a->beta1, a->beta2, a->eps,
                     decay ? a->weight_decay : 0.0f, a->step, a->grad_scale);
}

void tsr_optimizer_adamw(const tsr_model *model, const tsr_param_shard *shard, float *master,
                         float *m, float *v, const tsr_adamw_args *args)
{
    adamw_walk w = {model, master, m, v, args};
    tsr_optimizer_adamw_pieces(model, shard, update_piece, &w);
}
