/*
 * optimizer.c - the gradient sum of squares and AdamW over this rank's
 * share of the flat buffer (see optimizer.h).
 *
 * Both walk (range x block) intersections: the owned ranges against the
 * model's tensor blocks for the norm, the updated ranges against the
 * weight-decay spans for AdamW. Tables are small (hundreds of tensors,
 * one range per gradient bucket), so plain double loops are cheap next to
 * the arithmetic they drive.
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

static double range_sumsq(const tsr_model *model, size_t r0, size_t r1)
{
    size_t lo, hi;
    if (model->tensors == NULL || model->tensor_count == 0)
        return intersect(r0, r1, 0, model->param_count, &lo, &hi)
                   ? tsr_sum_squares(model->grads + lo, (int64_t)(hi - lo))
                   : 0.0;
    double sum = 0.0;
    /* frozen tensors have no gradient; their offsets are into the frozen array */
    for (size_t i = 0; i < model->tensor_count; i++) {
        const tsr_tensor_desc *t = &model->tensors[i];
        size_t size = (size_t)(t->row_count * t->col_count);
        if (t->writer && !t->frozen && size > 0 && intersect(r0, r1, t->offset, t->offset + size, &lo, &hi))
            sum += tsr_sum_squares(model->grads + lo, (int64_t)(hi - lo));
    }
    return sum;
}

double tsr_optimizer_grad_sumsq(const tsr_model *model, const tsr_param_shard *shard)
{
    if (shard == NULL || shard->ranges == NULL)
        return range_sumsq(model, 0, model->param_count);
    double sum = 0.0;
    for (size_t i = 0; i < shard->range_count; i++) {
        const tsr_shard_range *r = &shard->ranges[i];
        sum += range_sumsq(model, r->offset, r->offset + r->count);
    }
    return sum;
}

static void update_range(const tsr_model *model, const tsr_shard_range *r, float *master,
                         float *m, float *v, const tsr_adamw_args *a)
{
    for (size_t s = 0; s < model->span_count; s++) {
        const tsr_param_span *span = &model->spans[s];
        size_t lo, hi;
        if (!intersect(r->offset, r->offset + r->count, span->offset, span->offset + span->count,
                       &lo, &hi))
            continue;
        size_t state = r->state_offset + (lo - r->offset);
        float *weights = master != NULL ? master + state : model->params + lo;
        tsr_adamw_update(weights, model->grads + lo, m + state, v + state,
                         (int64_t)(hi - lo), a->lr, a->beta1, a->beta2, a->eps,
                         span->decay ? a->weight_decay : 0.0f, a->step, a->grad_scale);
    }
}

void tsr_optimizer_adamw(const tsr_model *model, const tsr_param_shard *shard, float *master,
                         float *m, float *v, const tsr_adamw_args *args)
{
    if (shard == NULL || shard->ranges == NULL || !shard->sharded_state) {
        tsr_shard_range all = {0, model->param_count, 0};
        update_range(model, &all, master, m, v, args);
        return;
    }
    for (size_t i = 0; i < shard->range_count; i++)
        update_range(model, &shard->ranges[i], master, m, v, args);
}
