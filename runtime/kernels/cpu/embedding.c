/*
 * embedding.c - token embedding over a vocabulary slice, and learned
 * absolute position embeddings, forward and backward.
 *
 * Backward is a scatter-add (several rows may hold the same token or
 * position). To stay deterministic without atomics or scratch, the token
 * table gradient is split by column blocks, each walking the tokens in
 * order; the position gradient is split by position, each summing the
 * batch in order. Both are bitwise the same for any thread count. Called
 * by the (vocabulary-parallel) embedding layer.
 *
 * While --bf16's or --fp16's context is active, forward reads the token
 * table as the linear kernels read their weights: from its 16-bit copy
 * when the table is mapped (kernels/matmul16.h), so that the model needs
 * no fp32 values of it (TSR_PARAM_NO_FP32_READ).
 */
#include "kernels/matmul16.h"
#include "simd.h"
#include "tessera/kernels.h"

#define COL_BLOCK 64

void tsr_embedding_forward(float *out, const int32_t *tokens, const float *table, int64_t n,
                           int64_t c, int64_t vocab_start, int64_t vocab_local)
{
    const tsr_matmul16 *m16 = tsr_matmul16_active();
    const char *copy =
        m16 != NULL ? tsr_matmul16_copy_of(m16, table, (size_t)(vocab_local * c)) : NULL;
    size_t row_bytes = copy != NULL ? (size_t)c * tsr_matmul16_copy_element_bytes(m16) : 0;
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        int64_t row = (int64_t)tokens[i] - vocab_start;
        float *y = out + i * c;
        if (row >= 0 && row < vocab_local && copy != NULL)
            tsr_matmul16_widen_copy(m16, y, copy + (size_t)row * row_bytes, (size_t)c);
        else if (row >= 0 && row < vocab_local)
            memcpy(y, table + row * c, (size_t)c * sizeof(float));
        else
            memset(y, 0, (size_t)c * sizeof(float));
    }
}

void tsr_embedding_backward(float *dtable, const float *dout, const int32_t *tokens, int64_t n,
                            int64_t c, int64_t vocab_start, int64_t vocab_local)
{
    if (dtable == NULL)
        return;
    int64_t blocks = (c + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (n * c >= TSR_PARALLEL_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t c0 = blk * COL_BLOCK;
        int64_t w = c - c0 < COL_BLOCK ? c - c0 : COL_BLOCK;
        for (int64_t i = 0; i < n; i++) {
            int64_t row = (int64_t)tokens[i] - vocab_start;
            if (row < 0 || row >= vocab_local)
                continue;
            float *d = dtable + row * c + c0;
            const float *g = dout + i * c + c0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++)
                d[j] += g[j];
        }
    }
}

void tsr_position_add_forward(float *out, const float *wpe, int64_t b, int64_t t, int64_t c,
                              int64_t t_offset)
{
#pragma omp parallel for schedule(static) if (b * t * c >= TSR_PARALLEL_MIN)
    for (int64_t r = 0; r < b * t; r++) {
        const float *p = wpe + (t_offset + r % t) * c;
        float *y = out + r * c;
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            y[j] += p[j];
    }
}

void tsr_position_add_backward(float *dwpe, const float *dout, int64_t b, int64_t t, int64_t c,
                               int64_t t_offset)
{
    if (dwpe == NULL)
        return;
#pragma omp parallel for schedule(static) if (b * t * c >= TSR_PARALLEL_MIN)
    for (int64_t pos = 0; pos < t; pos++) {
        float *d = dwpe + (t_offset + pos) * c;
        for (int64_t s = 0; s < b; s++) {
            const float *g = dout + (s * t + pos) * c;
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                d[j] += g[j];
        }
    }
}

static int64_t doc_position(const int32_t *doc_start, int64_t r, int64_t t, int64_t t_offset,
                            int64_t seq)
{
    int64_t s = r / t, pos = t_offset + r % t;
    return pos - doc_start[s * seq + pos];
}

void tsr_position_add_forward_docs(float *out, const float *wpe, const int32_t *doc_start,
                                   int64_t b, int64_t t, int64_t c, int64_t t_offset, int64_t seq)
{
    if (doc_start == NULL) {
        tsr_position_add_forward(out, wpe, b, t, c, t_offset);
        return;
    }
#pragma omp parallel for schedule(static) if (b * t * c >= TSR_PARALLEL_MIN)
    for (int64_t r = 0; r < b * t; r++) {
        const float *p = wpe + doc_position(doc_start, r, t, t_offset, seq) * c;
        float *y = out + r * c;
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            y[j] += p[j];
    }
}

/* Rows of different documents share positions, so the threads split the
 * channels (each sums its columns over all rows, in row order) rather
 * than the positions. */
void tsr_position_add_backward_docs(float *dwpe, const float *dout, const int32_t *doc_start,
                                    int64_t b, int64_t t, int64_t c, int64_t t_offset, int64_t seq)
{
    if (doc_start == NULL) {
        tsr_position_add_backward(dwpe, dout, b, t, c, t_offset);
        return;
    }
    if (dwpe == NULL)
        return;
    enum { COLS = 64 };
#pragma omp parallel for schedule(static) if (b * t * c >= TSR_PARALLEL_MIN)
    for (int64_t j0 = 0; j0 < c; j0 += COLS) {
        int64_t m = c - j0 < COLS ? c - j0 : COLS;
        for (int64_t r = 0; r < b * t; r++) {
            float *d = dwpe + doc_position(doc_start, r, t, t_offset, seq) * c + j0;
            const float *g = dout + r * c + j0;
#pragma omp simd
            for (int64_t j = 0; j < m; j++)
                d[j] += g[j];
        }
    }
}
