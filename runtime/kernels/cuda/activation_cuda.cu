/*
 * activation_cuda.cu - GELU (tanh approximation) and SwiGLU on the GPU,
 * forward and backward, with the formulas of runtime/kernels/cpu/
 * activation.c: GELU as x * sigmoid(2u), u = k (x + 0.044715 x^3), which
 * is 0.5 x (1 + tanh u) without tanh's cancellation near -1; SwiGLU as
 * silu(gate) * up. The device's expf (2 ulp) stands in for the CPU's
 * polynomial exp (2 ulp), so results agree to a few ulp, not bitwise.
 * Elements are independent: GELU is a grid-stride element kernel, SwiGLU a
 * block per row (the gate and up halves of a row sit f apart). Called by
 * the GPU MLP blocks.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

constexpr float GELU_K = 0.7978845608028654f; /* sqrt(2 / pi) */
constexpr float GELU_C = 0.044715f;

/* sigmoid(2u) = 0.5 (1 + tanh u) */
__device__ __forceinline__ float gelu_half_one_plus_tanh(float x)
{
    float u = GELU_K * (x + GELU_C * x * x * x);
    return 1.0f / (1.0f + expf(-2.0f * u));
}

__device__ __forceinline__ float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

__global__ void gelu_forward_kernel(float *out, const float *inp, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads()) {
        float x = inp[i];
        out[i] = x * gelu_half_one_plus_tanh(x);
    }
}

/* d/dx [x s(x)] = s + x * 2 s (1 - s) du/dx, s = 0.5 (1 + tanh u) */
__global__ void gelu_backward_kernel(float *dinp, const float *dout, const float *inp, int64_t n)
{
    for (int64_t i = tsr_thread_index(); i < n; i += tsr_grid_threads()) {
        float x = inp[i];
        float s = gelu_half_one_plus_tanh(x);
        float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        dinp[i] += dout[i] * (s + x * 2.0f * s * (1.0f - s) * du);
    }
}

__global__ void swiglu_forward_kernel(float *out, const float *inp, int64_t n, int64_t f)
{
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *gate = inp + row * 2 * f, *up = gate + f;
        float *y = out + row * f;
        for (int64_t j = threadIdx.x; j < f; j += blockDim.x) {
            float g = gate[j];
            y[j] = g * sigmoid(g) * up[j];
        }
    }
}

/* d gate = dout * up * s (1 + g (1 - s)); d up = dout * g s */
__global__ void swiglu_backward_kernel(float *dinp, const float *dout, const float *inp, int64_t n,
                                       int64_t f)
{
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *gate = inp + row * 2 * f, *up = gate + f, *dy = dout + row * f;
        float *dgate = dinp + row * 2 * f, *dup = dgate + f;
        for (int64_t j = threadIdx.x; j < f; j += blockDim.x) {
            float g = gate[j], s = sigmoid(g);
            dgate[j] += dy[j] * up[j] * s * (1.0f + g * (1.0f - s));
            dup[j] += dy[j] * g * s;
        }
    }
}

} /* namespace */

/* limits and an element geometry; *empty when n == 0 */
static tsr_status elements_of(const char *kernel, int64_t n, tsr_cuda_launch *launch, int *empty)
{
    tsr_status st = tsr_cuda_sizes(kernel, n, 1, empty);
    if (st != TSR_OK || *empty)
        return st;
    return tsr_cuda_device_elements(kernel, n, launch);
}

/* a block per row of f outputs; the rows of inp (and dinp) are 2f wide */
static tsr_status swiglu_rows(const char *kernel, int64_t n, int64_t f, tsr_cuda_launch *launch,
                              int *empty)
{
    tsr_status st = tsr_cuda_sizes(kernel, n, f, empty);
    if (st != TSR_OK || *empty)
        return st;
    if (f > INT64_MAX / 2 / n)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %" PRId64 " rows of 2 x %" PRId64
                             " inputs overflow a 64-bit index",
                             kernel, n, f);
    return tsr_cuda_device_rows(kernel, n, f, 0, NULL, launch);
}

static tsr_status need2(const void *a, const char *name_a, const void *b, const char *name_b,
                        const char *kernel)
{
    tsr_status st = tsr_cuda_need(a, name_a, kernel);
    return st != TSR_OK ? st : tsr_cuda_need(b, name_b, kernel);
}

extern "C" tsr_status tsr_cuda_gelu_forward(float *out, const float *inp, int64_t n, void *stream)
{
    const char *kernel = "tsr_cuda_gelu_forward";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = elements_of(kernel, n, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    st = need2(out, "out", inp, "inp", kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, gelu_forward_kernel, out, inp, n);
}

extern "C" tsr_status tsr_cuda_gelu_backward(float *dinp, const float *dout, const float *inp,
                                             int64_t n, void *stream)
{
    const char *kernel = "tsr_cuda_gelu_backward";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = elements_of(kernel, n, &g, &empty);
    if (st != TSR_OK || empty || dinp == NULL)
        return st;
    st = need2(dout, "dout", inp, "inp", kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, gelu_backward_kernel, dinp, dout, inp, n);
}

extern "C" tsr_status tsr_cuda_swiglu_forward(float *out, const float *inp, int64_t n, int64_t f,
                                              void *stream)
{
    const char *kernel = "tsr_cuda_swiglu_forward";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = swiglu_rows(kernel, n, f, &g, &empty);
    if (st != TSR_OK || empty)
        return st;
    st = need2(out, "out", inp, "inp", kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, swiglu_forward_kernel, out, inp, n, f);
}

extern "C" tsr_status tsr_cuda_swiglu_backward(float *dinp, const float *dout, const float *inp,
                                               int64_t n, int64_t f, void *stream)
{
    const char *kernel = "tsr_cuda_swiglu_backward";
    tsr_cuda_launch g;
    int empty = 0;
    tsr_status st = swiglu_rows(kernel, n, f, &g, &empty);
    if (st != TSR_OK || empty || dinp == NULL)
        return st;
    st = need2(dout, "dout", inp, "inp", kernel);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, swiglu_backward_kernel, dinp, dout, inp, n, f);
}
