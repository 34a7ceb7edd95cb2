/*
 * cross_entropy_cuda.cu - softmax cross-entropy over a (N, V_local) logits
 * chunk on the GPU, in the four steps of runtime/kernels/cpu/
 * cross_entropy.c, so that a tensor-parallel caller can all-reduce the
 * max, then the sum of exponentials and the target logit, between them;
 * the fused LM head calls them once per row chunk.
 *
 * Steps 1, 2 and 4 give a block to a row (grid-stride over rows): the max
 * and the sum (in double, per thread and across the block in a fixed
 * order) are block reductions, deterministic for the geometry the sizes
 * fix. Step 3 is element-wise over rows. The device's expf and logf stand
 * in for the CPU's (2 ulp and 1 ulp), so sumexp, loss and gradient agree
 * with the CPU to a few ulp; the max and the target logit are the CPU's
 * bits. Step 4 overwrites the logits with their gradient in place: each
 * element is read and written by one thread.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

__global__ void ce_row_max_kernel(float *row_max, const float *logits, int64_t n, int64_t v_local)
{
    float *partial = tsr_shared<float>();
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = logits + row * v_local;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < v_local; j += blockDim.x)
            m = fmaxf(m, x[j]);
        m = tsr_block_max(m, partial);
        if (threadIdx.x == 0)
            row_max[row] = m;
    }
}

__global__ void ce_sumexp_target_kernel(float *sumexp, float *target_logit, const float *logits,
                                        const float *row_max, const int32_t *targets, int64_t n,
                                        int64_t v_local, int64_t vocab_start)
{
    double *partial = tsr_shared<double>();
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = logits + row * v_local;
        float m = row_max[row];
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < v_local; j += blockDim.x)
            s += (double)expf(x[j] - m);
        s = tsr_block_sum(s, partial);
        if (threadIdx.x == 0) {
            sumexp[row] = (float)s;
            int64_t tj = (int64_t)targets[row] - vocab_start;
            target_logit[row] = tj >= 0 && tj < v_local ? x[tj] : 0.0f;
        }
    }
}

__global__ void ce_loss_kernel(float *loss, const float *sumexp, const float *row_max,
                               const float *target_logit, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads())
        loss[i] = logf(sumexp[i]) + (row_max[i] - target_logit[i]);
}

/* (softmax - onehot(target)) * dloss; the products and the target's
 * subtraction are rounded separately as in the CPU's two statements */
__global__ void ce_logits_to_grad_kernel(float *logits, const float *row_max,
                                         const float *sumexp, const int32_t *targets,
                                         const float *dloss, int64_t n, int64_t v_local,
                                         int64_t vocab_start)
{
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        float *x = logits + row * v_local;
        float dl = dloss[row];
        if (dl == 0.0f) { /* the same for the whole block: no barrier is skipped */
            for (int64_t j = threadIdx.x; j < v_local; j += blockDim.x)
                x[j] = 0.0f;
            continue;
        }
        float m = row_max[row], k = dl / sumexp[row];
        int64_t tj = (int64_t)targets[row] - vocab_start;
        for (int64_t j = threadIdx.x; j < v_local; j += blockDim.x) {
            float g = __fmul_rn(expf(x[j] - m), k);
            x[j] = j == tj ? __fsub_rn(g, dl) : g;
        }
    }
}

} /* namespace */

extern "C" tsr_status tsr_cuda_ce_row_max(float *row_max, const float *logits, int64_t n,
                                          int64_t v_local, void *stream)
{
    const char *kernel = "tsr_cuda_ce_row_max";
    const void *ptrs[] = {row_max, logits};
    const char *names[] = {"row_max", "logits"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_rows_of(kernel, n, v_local, sizeof(float), ptrs, names, 2, NULL, &g,
                                     &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, ce_row_max_kernel, row_max, logits, n, v_local);
}

extern "C" tsr_status tsr_cuda_ce_sumexp_target(float *sumexp, float *target_logit,
                                                const float *logits, const float *row_max,
                                                const int32_t *targets, int64_t n,
                                                int64_t v_local, int64_t vocab_start,
                                                void *stream)
{
    const char *kernel = "tsr_cuda_ce_sumexp_target";
    const void *ptrs[] = {sumexp, target_logit, logits, row_max, targets};
    const char *names[] = {"sumexp", "target_logit", "logits", "row_max", "targets"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_rows_of(kernel, n, v_local, sizeof(double), ptrs, names, 5, NULL, &g,
                                     &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, ce_sumexp_target_kernel, sumexp, target_logit,
                        logits, row_max, targets, n, v_local, vocab_start);
}

extern "C" tsr_status tsr_cuda_ce_loss(float *loss, const float *sumexp, const float *row_max,
                                       const float *target_logit, int64_t n, void *stream)
{
    const char *kernel = "tsr_cuda_ce_loss";
    const void *ptrs[] = {loss, sumexp, row_max, target_logit};
    const char *names[] = {"loss", "sumexp", "row_max", "target_logit"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_elements_of(kernel, n, ptrs, names, 4, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, ce_loss_kernel, loss, sumexp, row_max, target_logit,
                        n);
}

extern "C" tsr_status tsr_cuda_ce_logits_to_grad(float *logits, const float *row_max,
                                                 const float *sumexp, const int32_t *targets,
                                                 const float *dloss, int64_t n, int64_t v_local,
                                                 int64_t vocab_start, void *stream)
{
    const char *kernel = "tsr_cuda_ce_logits_to_grad";
    const void *ptrs[] = {logits, row_max, sumexp, targets, dloss};
    const char *names[] = {"logits", "row_max", "sumexp", "targets", "dloss"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_rows_of(kernel, n, v_local, 0, ptrs, names, 5, NULL, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, ce_logits_to_grad_kernel, logits, row_max, sumexp,
                        targets, dloss, n, v_local, vocab_start);
}
