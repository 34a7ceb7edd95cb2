/*
 * optimizer_cuda.cu - one AdamW step over a flat parameter shard on the
 * GPU, in the order of operations of runtime/kernels/cpu/adamw.c (that of
 * torch.optim.AdamW's single-tensor path):
 *
 *   param *= 1 - lr * weight_decay
 *   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
 *   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 *
 * with g = grad * grad_scale. The scalar factors come from the host
 * (tsr_cuda_adamw_factors_make, the CPU's statements). Every device
 * operation is written with an explicit round-to-nearest intrinsic, so
 * nvcc cannot contract a multiply and an add into an FMA: the kernel
 * computes exactly the C expressions of adamw.c evaluated one rounding
 * at a time (IEEE division and square root included). adamw.c itself is
 * built with -ffp-contract=fast and may fuse b1 * m + (1 - b1) * g and
 * its kin, so the GPU and the CPU agree to an ulp or two per step, not
 * bitwise; a CPU build without contraction would match bit for bit.
 * Elements are independent. Called by the GPU optimizer step.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

__global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, int64_t n,
                             const tsr_cuda_adamw_factors f)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads()) {
        float g = __fmul_rn(grad[i], f.grad_scale);
        float p = __fmul_rn(param[i], f.decay);
        float mi = __fadd_rn(__fmul_rn(f.beta1, m[i]), __fmul_rn(f.one_minus_beta1, g));
        float vi = __fadd_rn(__fmul_rn(f.beta2, v[i]),
                             __fmul_rn(__fmul_rn(f.one_minus_beta2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), f.bc2_sqrt), f.eps);
        param[i] = __fsub_rn(p, __fmul_rn(f.step_size, __fdiv_rn(mi, denom)));
    }
}

} /* namespace */

extern "C" tsr_status tsr_cuda_adamw_update(float *param, const float *grad, float *m, float *v,
                                            int64_t n, float lr, float beta1, float beta2,
                                            float eps, float weight_decay, int64_t step,
                                            float grad_scale, void *stream)
{
    const char *kernel = "tsr_cuda_adamw_update";
    const void *ptrs[] = {param, grad, m, v};
    const char *names[] = {"param", "grad", "m", "v"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = tsr_cuda_elements_of(kernel, n, ptrs, names, 4, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    tsr_cuda_adamw_factors factors;
    tsr_cuda_adamw_factors_make(&factors, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
    return tsr_cuda_run(kernel, &g, stream, adamw_kernel, param, grad, m, v, n, factors);
}
