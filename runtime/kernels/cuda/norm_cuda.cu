/*
 * norm_cuda.cu - LayerNorm and RMSNorm over the last dimension on the GPU,
 * forward and backward, with the semantics of runtime/kernels/cpu/
 * layernorm.c and rmsnorm.c (see cuda_kernels.h).
 *
 * A block owns a whole row (grid-stride over rows), so a row's statistics
 * are one block reduction: the forward sums in double as the CPU does,
 * the backward's two row sums in float as the CPU does. The weight and
 * bias gradients are column sums over rows, made without atomics: a block
 * owns a strip of 32 columns, its warps sum interleaved rows in order and
 * the warps' sums are added in warp order, so the bits depend on the
 * geometry's group count only (a function of the row count). Called by the
 * GPU transformer blocks and the final norm.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *weight, const float *bias, int64_t n,
                                         int64_t c, float eps)
{
    double *partial = tsr_shared<double>();
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = inp + row * c;
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            s += (double)x[j];
        double mu = tsr_block_sum(s, partial) / (double)c;
        double v = 0.0;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            double d = (double)x[j] - mu;
            v += d * d;
        }
        v = tsr_block_sum(v, partial);
        float m = (float)mu;
        float r = (float)(1.0 / sqrt(v / (double)c + (double)eps));
        /* out may be inp: each thread reads x[j] before it writes y[j], and
         * every read of the statistics passes ended at the barrier above */
        float *y = out + row * c;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            y[j] = (x[j] - m) * r * weight[j] + bias[j];
        if (threadIdx.x == 0) {
            mean[row] = m;
            rstd[row] = r;
        }
    }
}

__global__ void layernorm_backward_input_kernel(float *dinp, const float *dout, const float *inp,
                                                const float *weight, const float *mean,
                                                const float *rstd, int64_t n, int64_t c)
{
    float *partial = tsr_shared<float>();
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = inp + row * c, *dy = dout + row * c;
        float m = mean[row], r = rstd[row];
        float sum_dn = 0.0f, sum_dn_norm = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float dn = dy[j] * weight[j];
            sum_dn += dn;
            sum_dn_norm += dn * (x[j] - m) * r;
        }
        float mean_dn = tsr_block_sum(sum_dn, partial) / (float)c;
        float mean_dn_norm = tsr_block_sum(sum_dn_norm, partial) / (float)c;
        float *dx = dinp + row * c;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float norm = (x[j] - m) * r;
            dx[j] += (dy[j] * weight[j] - mean_dn - norm * mean_dn_norm) * r;
        }
    }
}

/* dweight[j] += sum_i dout[i, j] * norm[i, j]; with LAYERNORM also
 * dbias[j] += sum_i dout[i, j]. norm is (x - mean) * rstd (LayerNorm) or
 * x * rstd (RMSNorm). Shared: [sums][blockDim.x] floats. */
template <bool LAYERNORM>
__global__ void norm_weight_grad_kernel(float *dweight, float *dbias, const float *dout,
                                        const float *inp, const float *mean, const float *rstd,
                                        int64_t n, int64_t c)
{
    float *partial = tsr_shared<float>();
    const unsigned lane = threadIdx.x % TSR_CUDA_WARP, group = threadIdx.x / TSR_CUDA_WARP;
    const unsigned groups = blockDim.x / TSR_CUDA_WARP;
    for (int64_t strip = blockIdx.x; strip * TSR_CUDA_WARP < c; strip += gridDim.x) {
        int64_t j = strip * TSR_CUDA_WARP + lane;
        float dw = 0.0f, db = 0.0f;
        if (j < c) {
            for (int64_t i = group; i < n; i += groups) {
                float dy = dout[i * c + j], x = inp[i * c + j];
                float norm = LAYERNORM ? (x - mean[i]) * rstd[i] : x * rstd[i];
                dw += dy * norm;
                db += dy;
            }
        }
        partial[threadIdx.x] = dw;
        if (LAYERNORM)
            partial[blockDim.x + threadIdx.x] = db;
        __syncthreads();
        if (group == 0 && j < c) {
            float sw = partial[lane], sb = LAYERNORM ? partial[blockDim.x + lane] : 0.0f;
            for (unsigned g = 1; g < groups; g++) {
                sw += partial[g * TSR_CUDA_WARP + lane];
                if (LAYERNORM)
                    sb += partial[blockDim.x + g * TSR_CUDA_WARP + lane];
            }
            if (dweight != NULL)
                dweight[j] += sw;
            if (LAYERNORM && dbias != NULL)
                dbias[j] += sb;
        }
        __syncthreads(); /* the next strip overwrites the partials */
    }
}

__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp,
                                       const float *weight, int64_t n, int64_t c, float eps)
{
    double *partial = tsr_shared<double>();
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = inp + row * c;
        double ss = 0.0;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            ss += (double)x[j] * (double)x[j];
        ss = tsr_block_sum(ss, partial);
        float r = (float)(1.0 / sqrt(ss / (double)c + (double)eps));
        float *y = out + row * c;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            y[j] = x[j] * r * weight[j];
        if (threadIdx.x == 0)
            rstd[row] = r;
    }
}

__global__ void rmsnorm_backward_input_kernel(float *dinp, const float *dout, const float *inp,
                                              const float *weight, const float *rstd, int64_t n,
                                              int64_t c)
{
    float *partial = tsr_shared<float>();
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = inp + row * c, *dy = dout + row * c;
        float r = rstd[row];
        float dot = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            dot += dy[j] * weight[j] * x[j];
        dot = tsr_block_sum(dot, partial);
        /* d rstd / d x_j = -rstd^3 x_j / C */
        float k = dot * r * r / (float)c;
        float *dx = dinp + row * c;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            dx[j] += (dy[j] * weight[j] - x[j] * k) * r;
    }
}

} /* namespace */

extern "C" tsr_status tsr_cuda_layernorm_forward(float *out, float *mean, float *rstd,
                                                 const float *inp, const float *weight,
                                                 const float *bias, int64_t n, int64_t c,
                                                 float eps, void *stream)
{
    const char *kernel = "tsr_cuda_layernorm_forward";
    const void *need[] = {out, mean, rstd, inp, weight, bias};
    const char *names[] = {"out", "mean", "rstd", "inp", "weight", "bias"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st =
        tsr_cuda_rows_of(kernel, n, c, sizeof(double), need, names, 6, NULL, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, layernorm_forward_kernel, out, mean, rstd, inp,
                        weight, bias, n, c, eps);
}

/* Both norms' backward: dinp, when asked, by the norm's own row kernel
 * (which reads weight), then the column sums of dweight (and, for
 * LayerNorm, dbias) over the same limits. need: the pointers every call
 * reads; mean and dbias are NULL for RMSNorm. */
template <bool LAYERNORM>
static tsr_status norm_backward(const char *kernel, const void *const *need,
                                const char *const *names, int count, float *dinp, float *dweight,
                                float *dbias, const float *dout, const float *inp,
                                const float *weight, const float *mean, const float *rstd,
                                int64_t n, int64_t c, void *stream)
{
    tsr_cuda_limits limits;
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st =
        tsr_cuda_rows_of(kernel, n, c, sizeof(float), need, names, count, &limits, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    if (dinp != NULL) {
        st = tsr_cuda_need(weight, "weight", kernel);
        if (st != TSR_OK)
            return st;
        st = LAYERNORM ? tsr_cuda_run(kernel, &g, stream, layernorm_backward_input_kernel, dinp,
                                      dout, inp, weight, mean, rstd, n, c)
                       : tsr_cuda_run(kernel, &g, stream, rmsnorm_backward_input_kernel, dinp,
                                      dout, inp, weight, rstd, n, c);
        if (st != TSR_OK)
            return st;
    }
    if (dweight == NULL && dbias == NULL)
        return TSR_OK;
    st = tsr_cuda_geometry_columns(&limits, n, c, LAYERNORM ? 2 : 1, kernel, &g);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, norm_weight_grad_kernel<LAYERNORM>, dweight, dbias,
                        dout, inp, mean, rstd, n, c);
}

extern "C" tsr_status tsr_cuda_layernorm_backward(float *dinp, float *dweight, float *dbias,
                                                  const float *dout, const float *inp,
                                                  const float *weight, const float *mean,
                                                  const float *rstd, int64_t n, int64_t c,
                                                  void *stream)
{
    const void *need[] = {dout, inp, mean, rstd};
    const char *names[] = {"dout", "inp", "mean", "rstd"};
    return norm_backward<true>("tsr_cuda_layernorm_backward", need, names, 4, dinp, dweight,
                               dbias, dout, inp, weight, mean, rstd, n, c, stream);
}

extern "C" tsr_status tsr_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp,
                                               const float *weight, int64_t n, int64_t c,
                                               float eps, void *stream)
{
    const char *kernel = "tsr_cuda_rmsnorm_forward";
    const void *need[] = {out, rstd, inp, weight};
    const char *names[] = {"out", "rstd", "inp", "weight"};
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st =
        tsr_cuda_rows_of(kernel, n, c, sizeof(double), need, names, 4, NULL, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    return tsr_cuda_run(kernel, &g, stream, rmsnorm_forward_kernel, out, rstd, inp, weight, n, c,
                        eps);
}

extern "C" tsr_status tsr_cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout,
                                                const float *inp, const float *weight,
                                                const float *rstd, int64_t n, int64_t c,
                                                void *stream)
{
    const void *need[] = {dout, inp, rstd};
    const char *names[] = {"dout", "inp", "rstd"};
    return norm_backward<false>("tsr_cuda_rmsnorm_backward", need, names, 3, dinp, dweight, NULL,
                                dout, inp, weight, NULL, rstd, n, c, stream);
}
