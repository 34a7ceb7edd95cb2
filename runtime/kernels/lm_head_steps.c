/*
 * lm_head_steps.c - the fused LM head's chunks, scratch layout and order
 * of steps (see lm_head_steps.h).
 */
#include "kernels/lm_head_steps.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tessera/kernels.h"

/* floats in one TSR_HEAD_ALIGN */
#define ALIGN_FLOATS ((int64_t)(TSR_HEAD_ALIGN / sizeof(float)))

static int64_t align_floats(int64_t count)
{
    return (count + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static tsr_status shape_check(const tsr_head_shape *s)
{
    if (s->n < 1 || s->hidden < 1 || s->v_local < 1 || s->vocab < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "LM head: rows %lld, hidden %lld, local vocabulary %lld, "
                             "vocabulary %lld; each must be at least 1",
                             (long long)s->n, (long long)s->hidden, (long long)s->v_local,
                             (long long)s->vocab);
    if (s->vocab_start < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "LM head: the vocabulary slice starts at %lld; it must not be "
                             "negative",
                             (long long)s->vocab_start);
    return TSR_OK;
}

tsr_status tsr_head_plan_make(tsr_head_plan *plan, const tsr_head_shape *shape,
                              int64_t logits_budget_bytes)
{
    if (plan == NULL || shape == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "LM head: the plan or shape is NULL");
    tsr_status st = shape_check(shape);
    if (st != TSR_OK)
        return st;
    memset(plan, 0, sizeof *plan);
    plan->shape = *shape;
    int64_t n = shape->n, v = shape->v_local;
    int64_t row_bytes = v * (int64_t)sizeof(float);
    int64_t fit = logits_budget_bytes > 0 ? logits_budget_bytes / row_bytes : 0;
    if (fit >= n) {
        plan->chunk_rows = n;
    } else {
        plan->chunk_rows = fit / TSR_HEAD_ROW_MULTIPLE * TSR_HEAD_ROW_MULTIPLE;
        if (plan->chunk_rows < 1)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "LM head: a logits budget of %lld bytes holds %lld rows "
                                 "of %lld vocabulary columns; it must hold at least %d (%lld "
                                 "bytes) or all %lld rows",
                                 (long long)logits_budget_bytes, (long long)fit, (long long)v,
                                 TSR_HEAD_ROW_MULTIPLE,
                                 (long long)(TSR_HEAD_ROW_MULTIPLE * row_bytes),
                                 (long long)n);
    }
    plan->chunks = (n + plan->chunk_rows - 1) / plan->chunk_rows;
    plan->last_rows = n - (plan->chunks - 1) * plan->chunk_rows;
    int64_t real = shape->vocab - shape->vocab_start;
    plan->first_pad = real < 0 ? 0 : real > v ? v : real;

    int64_t rows = plan->chunk_rows;
    plan->row_max_offset = align_floats(rows * v);
    plan->pack_offset = plan->row_max_offset + align_floats(rows);
    plan->scratch_bytes = (plan->pack_offset + align_floats(2 * rows)) * (int64_t)sizeof(float);
    return TSR_OK;
}

int64_t tsr_head_chunk_rows(const tsr_head_plan *plan, int64_t chunk)
{
    return chunk == plan->chunks - 1 ? plan->last_rows : plan->chunk_rows;
}

int64_t tsr_head_chunk_start(const tsr_head_plan *plan, int64_t chunk)
{
    return chunk * plan->chunk_rows;
}

static tsr_status head_chunk(const tsr_head_plan *plan, const tsr_head_io *io, bool train,
                             const tsr_head_ops *ops, void *ctx, int64_t r0, int64_t rows)
{
    const int64_t h = plan->shape.hidden;
    float *logits = io->scratch, *row_max = io->scratch + plan->row_max_offset;
    float *sumexp = io->scratch + plan->pack_offset, *target = sumexp + rows;
    const float *x = io->x + r0 * h;
    const int32_t *targets = io->targets + r0;
    tsr_status st = ops->logits(ctx, logits, x, rows);
    if (st == TSR_OK)
        st = ops->row_max(ctx, row_max, logits, rows);
    if (st == TSR_OK)
        st = ops->reduce(ctx, row_max, rows, TSR_HEAD_REDUCE_MAX);
    if (st == TSR_OK)
        st = ops->sumexp_target(ctx, sumexp, target, logits, row_max, targets, rows);
    if (st == TSR_OK) /* sum-exp and target logit lie side by side: one reduction */
        st = ops->reduce(ctx, sumexp, 2 * rows, TSR_HEAD_REDUCE_SUM);
    if (st == TSR_OK)
        st = ops->loss(ctx, io->row_loss + r0, io->row_correct + r0, sumexp, row_max, target,
                       rows);
    if (st != TSR_OK || !train)
        return st;
    st = ops->to_grad(ctx, logits, row_max, sumexp, targets, io->row_weight + r0, rows);
    if (st != TSR_OK)
        return st;
    return ops->backward(ctx, io->dx + r0 * h, logits, x, rows);
}

tsr_status tsr_head_run(const tsr_head_plan *plan, const tsr_head_io *io, bool train,
                        const tsr_head_ops *ops, void *ctx)
{
    if (plan == NULL || io == NULL || ops == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "LM head: the plan, io or ops is NULL");
    tsr_status st = TSR_OK;
    for (int64_t c = 0; st == TSR_OK && c < plan->chunks; c++)
        st = head_chunk(plan, io, train, ops, ctx, tsr_head_chunk_start(plan, c),
                        tsr_head_chunk_rows(plan, c));
    return st;
}

/* ---- the steps with the CPU kernels ------------------------------------- */

static tsr_status cpu_logits(void *ctx, float *logits, const float *x, int64_t rows)
{
    const tsr_head_cpu *c = ctx;
    const tsr_head_shape *s = &c->plan->shape;
    int64_t v = s->v_local;
    tsr_linear_forward(logits, x, c->weight, NULL, rows, s->hidden, v);
    for (int64_t r = 0; c->plan->first_pad < v && r < rows; r++)
        for (int64_t j = c->plan->first_pad; j < v; j++)
            logits[r * v + j] = -INFINITY;
    return TSR_OK;
}

static tsr_status cpu_row_max(void *ctx, float *row_max, const float *logits, int64_t rows)
{
    const tsr_head_cpu *c = ctx;
    tsr_ce_row_max(row_max, logits, rows, c->plan->shape.v_local);
    return TSR_OK;
}

static tsr_status cpu_reduce(void *ctx, float *x, int64_t count, tsr_head_reduce_op op)
{
    const tsr_head_cpu *c = ctx;
    return c->reduce != NULL ? c->reduce(c->reduce_ctx, x, count, op) : TSR_OK;
}

static tsr_status cpu_sumexp_target(void *ctx, float *sumexp, float *target_logit,
                                    const float *logits, const float *row_max,
                                    const int32_t *targets, int64_t rows)
{
    const tsr_head_cpu *c = ctx;
    const tsr_head_shape *s = &c->plan->shape;
    tsr_ce_sumexp_target(sumexp, target_logit, logits, row_max, targets, rows, s->v_local,
                         s->vocab_start);
    return TSR_OK;
}

static tsr_status cpu_loss(void *ctx, float *loss, float *correct, const float *sumexp,
                           const float *row_max, const float *target_logit, int64_t rows)
{
    (void)ctx;
    tsr_ce_loss(loss, sumexp, row_max, target_logit, rows);
    /* the target is the argmax when its logit is the row's maximum; both
     * are already reduced over the vocabulary shards */
    for (int64_t r = 0; r < rows; r++)
        correct[r] = target_logit[r] >= row_max[r] ? 1.0f : 0.0f;
    return TSR_OK;
}

static tsr_status cpu_to_grad(void *ctx, float *logits, const float *row_max,
                              const float *sumexp, const int32_t *targets,
                              const float *row_weight, int64_t rows)
{
    const tsr_head_cpu *c = ctx;
    const tsr_head_shape *s = &c->plan->shape;
    tsr_ce_logits_to_grad(logits, row_max, sumexp, targets, row_weight, rows, s->v_local,
                          s->vocab_start);
    return TSR_OK;
}

static tsr_status cpu_backward(void *ctx, float *dx, const float *dlogits, const float *x,
                               int64_t rows)
{
    const tsr_head_cpu *c = ctx;
    const tsr_head_shape *s = &c->plan->shape;
    tsr_linear_backward(dx, c->dweight, NULL, dlogits, x, c->weight, rows, s->hidden,
                        s->v_local);
    return TSR_OK;
}

const tsr_head_ops tsr_head_cpu_ops = {cpu_logits, cpu_row_max, cpu_reduce, cpu_sumexp_target,
                                       cpu_loss,   cpu_to_grad, cpu_backward};
