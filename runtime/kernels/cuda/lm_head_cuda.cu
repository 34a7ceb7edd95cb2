/*
 * lm_head_cuda.cu - the fused LM head on the GPU (lm_head_cuda.h): the
 * device's steps for tsr_head_run's chunk loop (kernels/lm_head_steps.c):
 * the cuBLASLt products, the cross-entropy kernels of
 * cross_entropy_cuda.cu, and the two small kernels only the head needs
 * (the padded columns' -inf, the argmax flag).
 */
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"
#include "kernels/cuda/lm_head_cuda.h"

static_assert(TSR_HEAD_ALIGN % TSR_CUDA_LINEAR_ALIGN == 0,
              "the head's chunks must start on the products' alignment");

namespace { /* kernels stay local to this file */

/* columns [first_pad, v_local) of every row: -inf, as the CPU head sets
 * them, so that padding changes neither the loss nor the gradient */
__global__ void head_pad_kernel(float *logits, int64_t rows, int64_t v_local, int64_t first_pad)
{
    const int64_t pad = v_local - first_pad;
    for (int64_t i = tsr_thread_index(); i < rows * pad; i += tsr_grid_threads())
        logits[(i / pad) * v_local + first_pad + i % pad] = -INFINITY;
}

/* 1 where the target's logit is the row's maximum (both reduced over the
 * shards already), the CPU head's test */
__global__ void head_correct_kernel(float *correct, const float *target_logit,
                                    const float *row_max, int64_t rows)
{
    for (int64_t i = tsr_thread_index(); i < rows; i += tsr_grid_threads())
        correct[i] = target_logit[i] >= row_max[i] ? 1.0f : 0.0f;
}

const char *const kernel = "tsr_cuda_lm_head_forward";

tsr_status check_args(const tsr_cuda_linear *linear, const tsr_head_plan *plan,
                      const tsr_head_io *io, const void *weight, bool train)
{
    if (linear == NULL || plan == NULL || io == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s: the linear context, plan or io is NULL",
                             kernel);
    const void *ptrs[] = {io->x, weight, io->targets, io->row_loss, io->row_correct,
                          io->scratch};
    const char *names[] = {"x", "weight", "targets", "row_loss", "row_correct", "scratch"};
    tsr_status st = tsr_cuda_need_all(kernel, ptrs, names, 6);
    if (st == TSR_OK && train) {
        const void *grads[] = {io->row_weight, io->dx};
        const char *grad_names[] = {"row_weight (training)", "dx (training)"};
        st = tsr_cuda_need_all(kernel, grads, grad_names, 2);
    }
    /* refused before any chunk runs, not at the first product that reads it */
    const void *aligned[] = {io->x, io->scratch, train ? io->dx : NULL};
    const char *aligned_names[] = {"x", "scratch", "dx"};
    for (int i = 0; st == TSR_OK && i < 3; i++)
        if ((uintptr_t)aligned[i] % TSR_CUDA_LINEAR_ALIGN != 0)
            st = tsr_error_set(TSR_ERR_INVALID_ARG, "%s: %s is not aligned to %d bytes", kernel,
                               aligned_names[i], TSR_CUDA_LINEAR_ALIGN);
    return st;
}

/* What the device's steps need beyond their arguments. */
struct device_head {
    tsr_cuda_linear *linear;
    const tsr_head_plan *plan;
    const void *weight;
    float *dweight;
    tsr_cuda_head_reduce_fn reduce;
    void *reduce_ctx;
    void *stream;
};

tsr_status step_logits(void *ctx, float *logits, const float *x, int64_t rows)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    const tsr_head_shape *s = &d->plan->shape;
    tsr_status st = tsr_cuda_linear_forward(d->linear, logits, x, d->weight, NULL, rows,
                                            s->hidden, s->v_local, d->stream);
    int64_t v = s->v_local, first = d->plan->first_pad;
    if (st != TSR_OK || first >= v)
        return st;
    tsr_cuda_launch g;
    if ((st = tsr_cuda_device_elements(kernel, rows * (v - first), &g)) != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, d->stream, head_pad_kernel, logits, rows, v, first);
}

tsr_status step_row_max(void *ctx, float *row_max, const float *logits, int64_t rows)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    return tsr_cuda_ce_row_max(row_max, logits, rows, d->plan->shape.v_local, d->stream);
}

tsr_status step_reduce(void *ctx, float *x, int64_t count, tsr_head_reduce_op op)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    return d->reduce != NULL ? d->reduce(d->reduce_ctx, x, count, op, d->stream) : TSR_OK;
}

tsr_status step_sumexp_target(void *ctx, float *sumexp, float *target_logit,
                              const float *logits, const float *row_max, const int32_t *targets,
                              int64_t rows)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    const tsr_head_shape *s = &d->plan->shape;
    return tsr_cuda_ce_sumexp_target(sumexp, target_logit, logits, row_max, targets, rows,
                                     s->v_local, s->vocab_start, d->stream);
}

tsr_status step_loss(void *ctx, float *loss, float *correct, const float *sumexp,
                     const float *row_max, const float *target_logit, int64_t rows)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    tsr_status st = tsr_cuda_ce_loss(loss, sumexp, row_max, target_logit, rows, d->stream);
    tsr_cuda_launch g;
    if (st == TSR_OK)
        st = tsr_cuda_device_elements(kernel, rows, &g);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, d->stream, head_correct_kernel, correct, target_logit,
                        row_max, rows);
}

tsr_status step_to_grad(void *ctx, float *logits, const float *row_max, const float *sumexp,
                        const int32_t *targets, const float *row_weight, int64_t rows)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    const tsr_head_shape *s = &d->plan->shape;
    return tsr_cuda_ce_logits_to_grad(logits, row_max, sumexp, targets, row_weight, rows,
                                      s->v_local, s->vocab_start, d->stream);
}

tsr_status step_backward(void *ctx, float *dx, const float *dlogits, const float *x, int64_t rows)
{
    const device_head *d = static_cast<const device_head *>(ctx);
    const tsr_head_shape *s = &d->plan->shape;
    return tsr_cuda_linear_backward(d->linear, dx, d->dweight, NULL, dlogits, x,
                                    d->weight, rows, s->hidden, s->v_local, d->stream);
}

const tsr_head_ops device_ops = {step_logits, step_row_max, step_reduce, step_sumexp_target,
                                 step_loss,   step_to_grad, step_backward};

} /* namespace */

extern "C" tsr_status tsr_cuda_lm_head_forward(tsr_cuda_linear *linear,
                                               const tsr_head_plan *plan,
                                               const tsr_head_io *io, const void *weight,
                                               float *dweight, bool train,
                                               tsr_cuda_head_reduce_fn reduce, void *reduce_ctx,
                                               void *stream)
{
    tsr_status st = check_args(linear, plan, io, weight, train);
    if (st != TSR_OK)
        return st;
    device_head d = {linear, plan, weight, dweight, reduce, reduce_ctx, stream};
    return tsr_head_run(plan, io, train, &device_ops, &d);
}
