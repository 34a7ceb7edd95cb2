/*
 * linear_cuda.cu - the cuBLASLt linear context (linear_cuda.h): creation
 * (descriptors, layouts, one heuristic query per product and shape,
 * buffers), the products, and the small kernels beside them: the bias
 * written into out before the forward product (which then adds with
 * beta = 1, as the CPU kernel and torch.addmm do), the column sum of
 * dbias; the operands are rounded to bf16 by convert_cuda.cu.
 *
 * How each row-major product becomes a column-major GEMM is decided in
 * linear_cuda_plan.c (tsr_cuda_gemm_map_init, unit-tested); this file
 * passes each map to cuBLASLt as it is, picking the buffers it names.
 */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/linear_cuda.h"

namespace {

struct lt_product {
    tsr_cuda_gemm_map map;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
};

struct lt_shape {
    tsr_cuda_linear_shape shape;
    lt_product product[TSR_CUDA_LINEAR_PRODUCTS];
};

/* The operands of one call, by the buffer names of tsr_cuda_gemm_map. */
struct call_buffers {
    const void *weight, *inp, *dout;
    float *out, *dinp, *dweight;
};

} /* namespace */

struct tsr_cuda_linear {
    tsr_cuda_linear_precision precision;
    cublasLtHandle_t lt;
    lt_shape *shapes;
    int64_t count;
    tsr_cuda_linear_buffers sizes;
    void *workspace;
    __nv_bfloat16 *inp16, *dout16;
    float *partial;
};

namespace {

tsr_status check_cuda(cudaError_t err, const char *what)
{
    if (err == cudaSuccess)
        return TSR_OK;
    return tsr_error_set(err == cudaErrorMemoryAllocation ? TSR_ERR_OUT_OF_MEMORY
                                                          : TSR_ERR_INTERNAL,
                         "CUDA linear: %s failed: %s", what, cudaGetErrorString(err));
}

tsr_status check_lt(cublasStatus_t status, const char *what)
{
    if (status == CUBLAS_STATUS_SUCCESS)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_INTERNAL, "CUDA linear: %s failed: %s", what,
                         cublasLtGetStatusString(status));
}

__global__ void bias_rows_kernel(float *__restrict__ out, const float *__restrict__ bias,
                                 int64_t count, int64_t oc)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = bias[i % oc];
}

/* partial[chunk][col] = sum of dout[row][col] over the chunk's rows, in
 * row order; one thread per (chunk, column), a warp reading 32
 * consecutive columns of a row. */
__global__ void colsum_partial_kernel(float *__restrict__ partial, const float *__restrict__ dout,
                                      int64_t n, int64_t oc, int64_t rows_per_chunk)
{
    const int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= oc)
        return;
    const int64_t r0 = (int64_t)blockIdx.y * rows_per_chunk;
    const int64_t r1 = r0 + rows_per_chunk < n ? r0 + rows_per_chunk : n;
    float acc = 0.0f;
    for (int64_t r = r0; r < r1; r++)
        acc += dout[r * oc + col];
    partial[(int64_t)blockIdx.y * oc + col] = acc;
}

/* dbias[col] += the chunks' partial sums, added in chunk order. */
__global__ void colsum_finish_kernel(float *__restrict__ dbias, const float *__restrict__ partial,
                                     int64_t chunks, int64_t oc)
{
    const int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= oc)
        return;
    float acc = 0.0f;
    for (int64_t c = 0; c < chunks; c++)
        acc += partial[c * oc + col];
    dbias[col] += acc;
}

tsr_status launch_status(const char *what)
{
    return check_cuda(cudaGetLastError(), what);
}

/* The CPU's rounding bits (denormals flushed, as --bf16 rounds on the
 * CPU), not __float2bfloat16_rn's, which keeps them. */
tsr_status to_bf16(__nv_bfloat16 *dst, const float *src, int64_t count, cudaStream_t stream)
{
    return tsr_cuda_bf16_from_floats(reinterpret_cast<uint16_t *>(dst), src, count, stream);
}

tsr_status layout(cublasLtMatrixLayout_t *out, cudaDataType_t type, const tsr_cuda_gemm_matrix *m)
{
    return check_lt(cublasLtMatrixLayoutCreate(out, type, (uint64_t)m->rows, (uint64_t)m->cols,
                                               m->ld),
                    "cublasLtMatrixLayoutCreate");
}

/* Descriptor, layouts and the heuristic's algorithm of one product. */
tsr_status product_init(lt_product *p, tsr_cuda_linear *ctx, tsr_cuda_linear_product which,
                        const tsr_cuda_linear_shape *shape, cublasLtMatmulPreference_t pref)
{
    tsr_status st = tsr_cuda_gemm_map_init(&p->map, which, shape);
    if (st != TSR_OK)
        return st;
    /* fp32 accumulation and scale in both precisions; COMPUTE_32F never
     * rounds operands to TF32 */
    st = check_lt(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                  "cublasLtMatmulDescCreate");
    if (st != TSR_OK)
        return st;
    cublasOperation_t ta = p->map.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = p->map.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    st = check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                 sizeof ta),
                  "setting TRANSA");
    if (st == TSR_OK)
        st = check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                     sizeof tb),
                      "setting TRANSB");
    cudaDataType_t operand = ctx->precision == TSR_CUDA_LINEAR_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    if (st == TSR_OK)
        st = layout(&p->a, operand, &p->map.a);
    if (st == TSR_OK)
        st = layout(&p->b, operand, &p->map.b);
    if (st == TSR_OK)
        st = layout(&p->c, CUDA_R_32F, &p->map.c);
    if (st != TSR_OK)
        return st;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    st = check_lt(cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->desc, p->a, p->b, p->c, p->c, pref,
                                                 1, &result, &found),
                  "cublasLtMatmulAlgoGetHeuristic");
    if (st != TSR_OK)
        return st;
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA linear: cuBLASLt offers no algorithm for the %s product of "
                             "shape n %lld, in %lld, out %lld in %s on this GPU",
                             which == TSR_CUDA_LINEAR_FORWARD ? "forward"
                             : which == TSR_CUDA_LINEAR_DINP  ? "input-gradient"
                                                              : "weight-gradient",
                             (long long)shape->n, (long long)shape->in_features,
                             (long long)shape->out_features,
                             ctx->precision == TSR_CUDA_LINEAR_BF16 ? "bf16" : "fp32");
    p->algo = result.algo;
    return TSR_OK;
}

void product_release(lt_product *p)
{
    if (p->a != NULL)
        cublasLtMatrixLayoutDestroy(p->a);
    if (p->b != NULL)
        cublasLtMatrixLayoutDestroy(p->b);
    if (p->c != NULL)
        cublasLtMatrixLayoutDestroy(p->c);
    if (p->desc != NULL)
        cublasLtMatmulDescDestroy(p->desc);
}

int same_shape(const tsr_cuda_linear_shape *x, int64_t n, int64_t ic, int64_t oc)
{
    return x->n == n && x->in_features == ic && x->out_features == oc;
}

lt_shape *find_shape(tsr_cuda_linear *ctx, int64_t n, int64_t ic, int64_t oc)
{
    for (int64_t i = 0; i < ctx->count; i++)
        if (same_shape(&ctx->shapes[i].shape, n, ic, oc))
            return &ctx->shapes[i];
    return NULL;
}

tsr_status make_shapes(tsr_cuda_linear *ctx, const tsr_cuda_linear_shape *shapes, int64_t count)
{
    cublasLtMatmulPreference_t pref = NULL;
    tsr_status st = check_lt(cublasLtMatmulPreferenceCreate(&pref),
                             "cublasLtMatmulPreferenceCreate");
    if (st != TSR_OK)
        return st;
    uint64_t ws = (uint64_t)ctx->sizes.workspace_bytes;
    uint32_t align = TSR_CUDA_LINEAR_ALIGN;
    st = check_lt(cublasLtMatmulPreferenceSetAttribute(
                      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                  "setting the workspace preference");
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0] && st == TSR_OK; i++)
        st = check_lt(cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &align, sizeof align),
                      "setting the alignment preference");
    for (int64_t i = 0; i < count && st == TSR_OK; i++) {
        const tsr_cuda_linear_shape *s = &shapes[i];
        if (find_shape(ctx, s->n, s->in_features, s->out_features) != NULL)
            continue;
        lt_shape *entry = &ctx->shapes[ctx->count++];
        entry->shape = *s;
        for (int p = 0; p < TSR_CUDA_LINEAR_PRODUCTS && st == TSR_OK; p++)
            st = product_init(&entry->product[p], ctx, (tsr_cuda_linear_product)p, s, pref);
    }
    cublasLtMatmulPreferenceDestroy(pref);
    return st;
}

/* beta: the map's, or 1 where a bias was written into the output first */
tsr_status run_product(tsr_cuda_linear *ctx, const lt_product *p, const call_buffers *buf,
                       float beta, cudaStream_t stream)
{
    const void *src[] = {buf->weight, buf->inp, buf->dout, buf->out, buf->dinp, buf->dweight};
    const float alpha = 1.0f;
    void *c = (void *)src[p->map.c.buffer];
    return check_lt(cublasLtMatmul(ctx->lt, p->desc, &alpha, src[p->map.a.buffer], p->a,
                                   src[p->map.b.buffer], p->b, &beta, c, p->c, c, p->c,
                                   &p->algo, ctx->workspace,
                                   (size_t)ctx->sizes.workspace_bytes, stream),
                    "cublasLtMatmul");
}

int misaligned(const void *p)
{
    return p != NULL && ((uintptr_t)p % TSR_CUDA_LINEAR_ALIGN) != 0;
}

/* The shape's context entry, or an error saying why there is none. */
tsr_status lookup(tsr_cuda_linear *ctx, int64_t n, int64_t ic, int64_t oc, lt_shape **entry,
                  const char *call)
{
    *entry = find_shape(ctx, n, ic, oc);
    if (*entry != NULL)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "CUDA linear %s: shape n %lld, in %lld, out %lld was not given to "
                         "tsr_cuda_linear_create; add it to the shapes listed at start-up",
                         call, (long long)n, (long long)ic, (long long)oc);
}

} /* namespace */

extern "C" void tsr_cuda_linear_destroy(tsr_cuda_linear *ctx)
{
    if (ctx == NULL)
        return;
    for (int64_t i = 0; i < ctx->count; i++)
        for (int p = 0; p < TSR_CUDA_LINEAR_PRODUCTS; p++)
            product_release(&ctx->shapes[i].product[p]);
    free(ctx->shapes);
    cudaFree(ctx->workspace);
    cudaFree(ctx->inp16);
    cudaFree(ctx->dout16);
    cudaFree(ctx->partial);
    if (ctx->lt != NULL)
        cublasLtDestroy(ctx->lt);
    free(ctx);
}

extern "C" tsr_status tsr_cuda_linear_create(tsr_cuda_linear **linear,
                                             tsr_cuda_linear_precision precision,
                                             const tsr_cuda_linear_shape *shapes, int64_t count)
{
    if (linear == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA linear: the context pointer is NULL");
    *linear = NULL;
    int dev = 0, major = 0;
    tsr_status st = check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    if (st == TSR_OK)
        st = check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev),
                        "cudaDeviceGetAttribute(ComputeCapabilityMajor)");
    tsr_cuda_linear_buffers sizes;
    if (st == TSR_OK)
        st = tsr_cuda_linear_buffers_plan(&sizes, precision, shapes, count, major);
    if (st != TSR_OK)
        return st;
    tsr_cuda_linear *ctx = (tsr_cuda_linear *)calloc(1, sizeof *ctx);
    lt_shape *table = (lt_shape *)calloc((size_t)count, sizeof *table);
    if (ctx == NULL || table == NULL) {
        free(ctx);
        free(table);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                             "CUDA linear: no host memory for a context of %lld shapes",
                             (long long)count);
    }
    ctx->precision = precision;
    ctx->shapes = table;
    ctx->sizes = sizes;
    st = check_lt(cublasLtCreate(&ctx->lt), "cublasLtCreate");
    if (st == TSR_OK)
        st = check_cuda(cudaMalloc(&ctx->workspace, (size_t)sizes.workspace_bytes),
                        "cudaMalloc of the cuBLASLt workspace");
    if (st == TSR_OK)
        st = check_cuda(cudaMalloc((void **)&ctx->partial, (size_t)sizes.colsum_bytes),
                        "cudaMalloc of the bias-gradient partial sums");
    if (st == TSR_OK && precision == TSR_CUDA_LINEAR_BF16) {
        st = check_cuda(cudaMalloc((void **)&ctx->inp16, (size_t)sizes.inp_bf16_bytes),
                        "cudaMalloc of the bf16 input copy");
        if (st == TSR_OK)
            st = check_cuda(cudaMalloc((void **)&ctx->dout16, (size_t)sizes.dout_bf16_bytes),
                            "cudaMalloc of the bf16 output-gradient copy");
    }
    if (st == TSR_OK)
        st = make_shapes(ctx, shapes, count);
    if (st != TSR_OK) {
        tsr_cuda_linear_destroy(ctx);
        return st;
    }
    *linear = ctx;
    return TSR_OK;
}

extern "C" int64_t tsr_cuda_linear_device_bytes(const tsr_cuda_linear *linear)
{
    return linear != NULL ? linear->sizes.total_bytes : 0;
}

extern "C" tsr_status tsr_cuda_linear_forward(tsr_cuda_linear *ctx, float *out, const float *inp,
                                              const void *weight, const float *bias, int64_t n,
                                              int64_t in_features, int64_t out_features,
                                              void *stream)
{
    if (ctx == NULL || out == NULL || inp == NULL || weight == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear forward: context, out, inp and weight must be given");
    if (n == 0)
        return TSR_OK; /* no rows, as the CPU kernel: nothing to write */
    lt_shape *entry = NULL;
    tsr_status st = lookup(ctx, n, in_features, out_features, &entry, "forward");
    if (st != TSR_OK)
        return st;
    if (misaligned(out) || misaligned(inp) || misaligned(weight))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear forward: out, inp and weight must be aligned to %d "
                             "bytes (the algorithms were chosen for it)",
                             TSR_CUDA_LINEAR_ALIGN);
    cudaStream_t s = (cudaStream_t)stream;
    const lt_product *p = &entry->product[TSR_CUDA_LINEAR_FORWARD];
    float beta = p->map.beta;
    if (bias != NULL) {
        int64_t count = n * out_features;
        bias_rows_kernel<<<(unsigned)tsr_cuda_linear_stride_blocks(count),
                           TSR_CUDA_LINEAR_THREADS, 0, s>>>(out, bias, count, out_features);
        st = launch_status("the bias launch");
        beta = 1.0f;
    }
    call_buffers buf = {weight, inp, NULL, out, NULL, NULL};
    if (st == TSR_OK && ctx->precision == TSR_CUDA_LINEAR_BF16) {
        st = to_bf16(ctx->inp16, inp, n * in_features, s);
        buf.inp = ctx->inp16;
    }
    if (st == TSR_OK)
        st = run_product(ctx, p, &buf, beta, s);
    return st;
}

extern "C" tsr_status tsr_cuda_linear_backward(tsr_cuda_linear *ctx, float *dinp, float *dweight,
                                               float *dbias, const float *dout,
                                               const float *inp, const void *weight, int64_t n,
                                               int64_t in_features, int64_t out_features,
                                               void *stream)
{
    if (ctx == NULL || dout == NULL || (dinp != NULL && weight == NULL) ||
        (dweight != NULL && inp == NULL))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear backward: the context and dout must be given, weight "
                             "with dinp and inp with dweight");
    if (n == 0 || (dinp == NULL && dweight == NULL && dbias == NULL))
        return TSR_OK;
    lt_shape *entry = NULL;
    tsr_status st = lookup(ctx, n, in_features, out_features, &entry, "backward");
    if (st != TSR_OK)
        return st;
    if (misaligned(dinp) || misaligned(dweight) || misaligned(dout) || misaligned(inp) ||
        misaligned(weight))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA linear backward: dinp, dweight, dout, inp and weight must be "
                             "aligned to %d bytes (the algorithms were chosen for it)",
                             TSR_CUDA_LINEAR_ALIGN);
    cudaStream_t s = (cudaStream_t)stream;
    call_buffers buf = {weight, inp, dout, NULL, dinp, dweight};
    if (ctx->precision == TSR_CUDA_LINEAR_BF16 && (dinp != NULL || dweight != NULL)) {
        st = to_bf16(ctx->dout16, dout, n * out_features, s);
        buf.dout = ctx->dout16;
        if (st == TSR_OK && dweight != NULL) {
            st = to_bf16(ctx->inp16, inp, n * in_features, s);
            buf.inp = ctx->inp16;
        }
    }
    if (st == TSR_OK && dinp != NULL)
        st = run_product(ctx, &entry->product[TSR_CUDA_LINEAR_DINP], &buf,
                         entry->product[TSR_CUDA_LINEAR_DINP].map.beta, s);
    if (st == TSR_OK && dweight != NULL)
        st = run_product(ctx, &entry->product[TSR_CUDA_LINEAR_DWEIGHT], &buf,
                         entry->product[TSR_CUDA_LINEAR_DWEIGHT].map.beta, s);
    if (st == TSR_OK && dbias != NULL) {
        tsr_cuda_colsum_plan cs;
        tsr_cuda_colsum_plan_init(&cs, n, out_features);
        dim3 grid((unsigned)cs.grid_x, (unsigned)cs.chunks);
        colsum_partial_kernel<<<grid, TSR_CUDA_LINEAR_THREADS, 0, s>>>(
            ctx->partial, dout, n, out_features, cs.rows_per_chunk);
        st = launch_status("the bias-gradient partial sums launch");
        if (st == TSR_OK) {
            colsum_finish_kernel<<<(unsigned)cs.grid_x, TSR_CUDA_LINEAR_THREADS, 0, s>>>(
                dbias, ctx->partial, cs.chunks, out_features);
            st = launch_status("the bias-gradient sum launch");
        }
    }
    return st;
}
