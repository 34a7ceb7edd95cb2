/*
 * rope_cuda.cu - rotary position embedding on the GPU, rotate-half
 * convention, as runtime/kernels/cpu/rope.c: for i < D/2 the pair
 * (x_i, x_{i+D/2}) is rotated by pos * base^(-2i/D), pos = t_offset + t.
 *
 * The inverse frequencies are computed on the host with the CPU's fp32
 * expression (launch_geometry.c) and passed by value, because the
 * device's powf differs from glibc's by an ulp now and then, and one ulp
 * of a frequency moves the angle of position 4096 by about 5e-4 rad. The
 * angle is then the same single fp32 product on both sides; only sincosf
 * (2 ulp on the device) differs. A block owns one (sample, position) row
 * and its threads walk the row's (head, pair) couples; a thread reads both
 * elements of its pair before writing them, so out may alias x. The
 * document-restarting positions of tsr_rope_forward_docs are not served
 * here yet. Called by the GPU attention block on q and k.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

struct rope_table {
    float inv_freq[TSR_CUDA_ROPE_HALF_MAX];
};

/* sign +1 rotates by +angle (forward), -1 by -angle (backward: the
 * inverse rotation); accumulate adds into y instead of overwriting it */
__global__ void rope_kernel(float *y, const float *x, const rope_table table, int64_t rows,
                            int64_t t, int64_t h, int64_t half, int64_t t_offset, float sign,
                            bool accumulate)
{
    /* the table once per block into shared memory: lanes read different
     * frequencies, which the parameter bank would serve one at a time */
    __shared__ float inv_freq[TSR_CUDA_ROPE_HALF_MAX];
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x)
        inv_freq[i] = table.inv_freq[i];
    __syncthreads();
    const int64_t d = 2 * half, pairs = h * half;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float pos = (float)(t_offset + r % t);
        for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
            int64_t head = p / half, i = p - head * half;
            float sn, cs;
            sincosf(__fmul_rn(pos, inv_freq[i]), &sn, &cs);
            float s = sign * sn;
            int64_t at = (r * h + head) * d + i;
            float a = x[at], bb = x[at + half];
            float o1 = a * cs - bb * s, o2 = bb * cs + a * s;
            if (accumulate) {
                y[at] += o1;
                y[at + half] += o2;
            } else {
                y[at] = o1;
                y[at + half] = o2;
            }
        }
    }
}

} /* namespace */

static tsr_status rope_launch(const char *kernel, float *y, const float *x, int64_t b, int64_t t,
                              int64_t h, int64_t d, int64_t t_offset, float base, float sign,
                              bool accumulate, void *stream)
{
    int empty_bt = 0, empty_hd = 0;
    tsr_status st = tsr_cuda_sizes(kernel, b, t, &empty_bt);
    if (st == TSR_OK)
        st = tsr_cuda_sizes(kernel, h, d, &empty_hd);
    if (st != TSR_OK || empty_bt || empty_hd)
        return st;
    if (t_offset < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s: t_offset %" PRId64 " is negative", kernel,
                             t_offset);
    if (b > INT64_MAX / t || b * t > INT64_MAX / h || b * t * h > INT64_MAX / d ||
        t_offset > INT64_MAX - t)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: (%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                             ") elements overflow a 64-bit index",
                             kernel, b, t, h, d);
    rope_table table = {};
    st = tsr_cuda_rope_frequencies(table.inv_freq, d, base, kernel);
    if (st != TSR_OK)
        return st;
    st = tsr_cuda_need(y, sign > 0 ? "out" : "dx", kernel);
    if (st == TSR_OK)
        st = tsr_cuda_need(x, sign > 0 ? "x" : "dout", kernel);
    tsr_cuda_launch g;
    int64_t half = d / 2;
    if (st == TSR_OK)
        st = tsr_cuda_device_rows(kernel, b * t, h * half, 0, NULL, &g);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, rope_kernel, y, x, table, b * t, t, h, half, t_offset,
                        sign, accumulate);
}

extern "C" tsr_status tsr_cuda_rope_forward(float *out, const float *x, int64_t b, int64_t t,
                                            int64_t h, int64_t d, int64_t t_offset, float base,
                                            void *stream)
{
    return rope_launch("tsr_cuda_rope_forward", out, x, b, t, h, d, t_offset, base, 1.0f, false,
                       stream);
}

extern "C" tsr_status tsr_cuda_rope_backward(float *dx, const float *dout, int64_t b, int64_t t,
                                             int64_t h, int64_t d, int64_t t_offset, float base,
                                             void *stream)
{
    if (dx == NULL)
        return TSR_OK;
    return rope_launch("tsr_cuda_rope_backward", dx, dout, b, t, h, d, t_offset, base, -1.0f,
                       true, stream);
}
