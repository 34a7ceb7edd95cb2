/*
 * embedding_cuda.cu - token embedding over a vocabulary slice on the GPU,
 * forward and backward, as runtime/kernels/cpu/embedding.c.
 *
 * Forward copies each token's row (a block per token), or writes zeros for
 * a token another tensor-parallel rank owns. Backward is a scatter-add
 * (many tokens share a row), made deterministic without atomics by giving
 * every element of the table gradient exactly one owner thread: thread
 * (slot s, column j) owns column j of the table rows [s * split, (s + 1) *
 * split) and walks all tokens in order, adding those that fall in its rows.
 * Each element therefore receives its tokens' contributions in token order,
 * one fp32 addition each, exactly as the CPU's column-block loop adds them:
 * the result is bitwise the CPU's, whatever the geometry. The slots only
 * add parallelism for a narrow table (every thread reads every token id,
 * from cache: lanes of a warp read the same id). Called by the GPU
 * (vocabulary-parallel) embedding layer.
 */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/elementwise_common.cuh"

namespace { /* kernels stay local to this file, whatever the others name theirs */

__global__ void embedding_forward_kernel(float *out, const int32_t *tokens, const float *table,
                                         int64_t n, int64_t c, int64_t vocab_start,
                                         int64_t vocab_local)
{
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        int64_t row = (int64_t)tokens[i] - vocab_start;
        bool owned = row >= 0 && row < vocab_local;
        float *y = out + i * c;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            y[j] = owned ? table[row * c + j] : 0.0f;
    }
}

__global__ void embedding_backward_kernel(float *dtable, const float *dout,
                                          const int32_t *tokens, int64_t n, int64_t c,
                                          int64_t vocab_start, int64_t vocab_local, int64_t split,
                                          int64_t slots)
{
    for (int64_t k = tsr_thread_index(); k < c * slots; k += tsr_grid_threads()) {
        int64_t s = k / c, j = k - s * c;
        int64_t lo = s * split;
        int64_t width = vocab_local - lo < split ? vocab_local - lo : split;
        float *column = dtable + lo * c + j;
        for (int64_t i = 0; i < n; i++) {
            int64_t row = (int64_t)tokens[i] - vocab_start - lo;
            if (row >= 0 && row < width)
                column[row * c] += dout[i * c + j];
        }
    }
}

} /* namespace */

static tsr_status embedding_args(const char *kernel, int64_t n, int64_t c, int64_t vocab_start,
                                 int64_t vocab_local, int *empty)
{
    tsr_status st = tsr_cuda_sizes(kernel, n, c, empty);
    if (st != TSR_OK)
        return st;
    if (vocab_local < 0 || vocab_start < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: vocabulary slice [%" PRId64 ", +%" PRId64 ") is negative",
                             kernel, vocab_start, vocab_local);
    if (!*empty && n > INT64_MAX / c)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %" PRId64 " x %" PRId64 " elements overflow a 64-bit index",
                             kernel, n, c);
    return TSR_OK;
}

extern "C" tsr_status tsr_cuda_embedding_forward(float *out, const int32_t *tokens,
                                                 const float *table, int64_t n, int64_t c,
                                                 int64_t vocab_start, int64_t vocab_local,
                                                 void *stream)
{
    const char *kernel = "tsr_cuda_embedding_forward";
    int empty = 0;
    tsr_status st = embedding_args(kernel, n, c, vocab_start, vocab_local, &empty);
    if (st != TSR_OK || empty)
        return st;
    st = tsr_cuda_need(out, "out", kernel);
    if (st == TSR_OK)
        st = tsr_cuda_need(tokens, "tokens", kernel);
    if (st == TSR_OK && vocab_local > 0)
        st = tsr_cuda_need(table, "table", kernel);
    tsr_cuda_launch g;
    if (st == TSR_OK)
        st = tsr_cuda_device_rows(kernel, n, c, 0, NULL, &g);
    if (st != TSR_OK)
        return st;
    return tsr_cuda_run(kernel, &g, stream, embedding_forward_kernel, out, tokens, table, n, c,
                        vocab_start, vocab_local);
}

extern "C" tsr_status tsr_cuda_embedding_backward(float *dtable, const float *dout,
                                                  const int32_t *tokens, int64_t n, int64_t c,
                                                  int64_t vocab_start, int64_t vocab_local,
                                                  void *stream)
{
    const char *kernel = "tsr_cuda_embedding_backward";
    int empty = 0;
    tsr_status st = embedding_args(kernel, n, c, vocab_start, vocab_local, &empty);
    if (st != TSR_OK || empty || vocab_local == 0 || dtable == NULL)
        return st;
    st = tsr_cuda_need(dout, "dout", kernel);
    if (st == TSR_OK)
        st = tsr_cuda_need(tokens, "tokens", kernel);
    tsr_cuda_limits limits;
    if (st == TSR_OK)
        st = tsr_cuda_limits_query(&limits, kernel);
    tsr_cuda_launch g;
    if (st == TSR_OK)
        st = tsr_cuda_geometry_scatter(&limits, c, vocab_local, kernel, &g);
    if (st != TSR_OK)
        return st;
    int64_t slots = tsr_cuda_scatter_slots(&g, vocab_local);
    return tsr_cuda_run(kernel, &g, stream, embedding_backward_kernel, dtable, dout, tokens, n, c,
                        vocab_start, vocab_local, g.split, slots);
}
