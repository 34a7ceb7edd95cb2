/*
 * linear_cuda_plan.c - shape checks, the row-major to column-major
 * mapping of the linear products, buffer sizes and small-kernel geometry
 * of the cuBLASLt linear context (see linear_cuda_plan.h).
 *
 * Why the mapping looks transposed: tessera's arrays are row-major and
 * cuBLAS reads column-major, and a row-major R x C matrix with leading
 * dimension C is, read column-major, its transpose (C x R, ld C). So a
 * row-major product X = Y Z is handed to cuBLAS as X^T = Z^T Y^T: the
 * operands swap places, each is passed as its own buffer with its row
 * length as ld, and no data is ever transposed. For the forward,
 * out^T (OC x N) = W (OC x IC, i.e. the IC x OC buffer transposed) times
 * inp^T (IC x N); the backward products follow the same rule.
 */
#include "kernels/cuda/linear_cuda_plan.h"

#include <stddef.h>

#define DIM_MAX 2147483647LL

tsr_status tsr_cuda_linear_shape_check(const tsr_cuda_linear_shape *shape)
{
    if (shape == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA linear: the shape is NULL");
    long long n = shape->n, ic = shape->in_features, oc = shape->out_features;
    if (n < 1 || ic < 1 || oc < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear: shape n %lld, in_features %lld, out_features %lld; "
                             "every size must be at least 1",
                             n, ic, oc);
    if (n > DIM_MAX || ic > DIM_MAX || oc > DIM_MAX)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA linear: shape n %lld, in_features %lld, out_features %lld; "
                             "cuBLASLt's dimensions must be below 2^31: split the rows",
                             n, ic, oc);
    return TSR_OK;
}

static tsr_cuda_gemm_matrix matrix(tsr_cuda_linear_buffer buffer, int64_t rows, int64_t cols)
{
    /* column-major, packed: the leading dimension is the row count */
    tsr_cuda_gemm_matrix m = {buffer, rows, cols, rows};
    return m;
}

/* C = op(A) op(B) + beta C: m, n and k follow from the operands, so the
 * three products cannot disagree with their own shapes. */
static tsr_status map_set(tsr_cuda_gemm_map *map, int trans_a, int trans_b, tsr_cuda_gemm_matrix a,
                          tsr_cuda_gemm_matrix b, tsr_cuda_gemm_matrix c, float beta)
{
    map->trans_a = trans_a;
    map->trans_b = trans_b;
    map->m = c.rows;
    map->n = c.cols;
    map->k = trans_a ? a.rows : a.cols;
    map->a = a;
    map->b = b;
    map->c = c;
    map->beta = beta;
    return TSR_OK;
}

tsr_status tsr_cuda_gemm_map_init(tsr_cuda_gemm_map *map, tsr_cuda_linear_product product,
                                  const tsr_cuda_linear_shape *shape)
{
    tsr_status st = tsr_cuda_linear_shape_check(shape);
    if (st != TSR_OK)
        return st;
    if (map == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA linear: the GEMM map is NULL");
    int64_t n = shape->n, ic = shape->in_features, oc = shape->out_features;
    switch (product) {
    case TSR_CUDA_LINEAR_FORWARD: /* out^T (OC x N) = W (OC x IC) @ inp^T (IC x N) */
        return map_set(map, 1, 0, matrix(TSR_CUDA_BUF_WEIGHT, ic, oc),
                       matrix(TSR_CUDA_BUF_INP, ic, n), matrix(TSR_CUDA_BUF_OUT, oc, n), 0.0f);
    case TSR_CUDA_LINEAR_DINP: /* dinp^T (IC x N) += W^T (IC x OC) @ dout^T (OC x N) */
        return map_set(map, 0, 0, matrix(TSR_CUDA_BUF_WEIGHT, ic, oc),
                       matrix(TSR_CUDA_BUF_DOUT, oc, n), matrix(TSR_CUDA_BUF_DINP, ic, n), 1.0f);
    case TSR_CUDA_LINEAR_DWEIGHT: /* dW^T (IC x OC) += inp^T (IC x N) @ dout (N x OC) */
        return map_set(map, 0, 1, matrix(TSR_CUDA_BUF_INP, ic, n),
                       matrix(TSR_CUDA_BUF_DOUT, oc, n), matrix(TSR_CUDA_BUF_DWEIGHT, ic, oc),
                       1.0f);
    case TSR_CUDA_LINEAR_PRODUCTS:
        break;
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA linear: unknown product %d", (int)product);
}

int64_t tsr_cuda_linear_workspace_bytes(int sm_major)
{
    return (sm_major >= 9 ? 32 : 4) * 1024LL * 1024LL;
}

int64_t tsr_cuda_linear_stride_blocks(int64_t count)
{
    int64_t blocks = (count + TSR_CUDA_LINEAR_THREADS - 1) / TSR_CUDA_LINEAR_THREADS;
    if (blocks < 1)
        return 1;
    return blocks < TSR_CUDA_LINEAR_MAX_BLOCKS ? blocks : TSR_CUDA_LINEAR_MAX_BLOCKS;
}

void tsr_cuda_colsum_plan_init(tsr_cuda_colsum_plan *plan, int64_t n, int64_t oc)
{
    int64_t chunks = (n + TSR_CUDA_COLSUM_MIN_ROWS - 1) / TSR_CUDA_COLSUM_MIN_ROWS;
    if (chunks > TSR_CUDA_COLSUM_MAX_CHUNKS)
        chunks = TSR_CUDA_COLSUM_MAX_CHUNKS;
    if (chunks < 1)
        chunks = 1;
    plan->rows_per_chunk = (n + chunks - 1) / chunks;
    /* rounding the chunk up can leave the last chunks empty: drop them */
    plan->chunks = (n + plan->rows_per_chunk - 1) / plan->rows_per_chunk;
    plan->grid_x = (oc + TSR_CUDA_LINEAR_THREADS - 1) / TSR_CUDA_LINEAR_THREADS;
}

tsr_status tsr_cuda_linear_buffers_plan(tsr_cuda_linear_buffers *buffers,
                                        tsr_cuda_linear_precision precision,
                                        const tsr_cuda_linear_shape *shapes, int64_t count,
                                        int sm_major)
{
    if (buffers == NULL || shapes == NULL || count < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear: give at least one (n, in, out) shape at creation; "
                             "every product's algorithm is chosen then");
    if (precision != TSR_CUDA_LINEAR_FP32 && precision != TSR_CUDA_LINEAR_BF16)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear: unknown precision %d (fp32 or bf16)", (int)precision);
    if (precision == TSR_CUDA_LINEAR_BF16 && sm_major < 8)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA linear: bf16 products need a GPU of compute capability 8.0 "
                             "(A100) or newer, and this one is %d.x; run in fp32",
                             sm_major);
    int64_t max_inp = 0, max_dout = 0, max_partial = 0;
    for (int64_t i = 0; i < count; i++) {
        tsr_status st = tsr_cuda_linear_shape_check(&shapes[i]);
        if (st != TSR_OK)
            return st;
        int64_t n = shapes[i].n, oc = shapes[i].out_features;
        tsr_cuda_colsum_plan cs;
        tsr_cuda_colsum_plan_init(&cs, n, oc);
        if (n * shapes[i].in_features > max_inp)
            max_inp = n * shapes[i].in_features;
        if (n * oc > max_dout)
            max_dout = n * oc;
        if (cs.chunks * oc > max_partial)
            max_partial = cs.chunks * oc;
    }
    int bf16 = precision == TSR_CUDA_LINEAR_BF16;
    buffers->workspace_bytes = tsr_cuda_linear_workspace_bytes(sm_major);
    buffers->inp_bf16_bytes = bf16 ? max_inp * 2 : 0;
    buffers->dout_bf16_bytes = bf16 ? max_dout * 2 : 0;
    buffers->colsum_bytes = max_partial * (int64_t)sizeof(float);
    buffers->total_bytes = buffers->workspace_bytes + buffers->inp_bf16_bytes +
                           buffers->dout_bf16_bytes + buffers->colsum_bytes;
    return TSR_OK;
}

tsr_status tsr_cuda_linear_head_shapes(const tsr_head_plan *plan, tsr_cuda_linear_shape shapes[2],
                                       int64_t *count)
{
    if (plan == NULL || shapes == NULL || count == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA linear: the head plan or shapes is NULL");
    const tsr_head_shape *s = &plan->shape;
    tsr_cuda_linear_shape full = {plan->chunk_rows, s->hidden, s->v_local};
    tsr_cuda_linear_shape last = {plan->last_rows, s->hidden, s->v_local};
    shapes[0] = full;
    *count = 1;
    if (plan->last_rows != plan->chunk_rows)
        shapes[(*count)++] = last;
    tsr_status st = TSR_OK;
    for (int64_t i = 0; i < *count && st == TSR_OK; i++)
        st = tsr_cuda_linear_shape_check(&shapes[i]);
    return st;
}
