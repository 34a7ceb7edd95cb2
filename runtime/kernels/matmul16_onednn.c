/*
 * matmul16_onednn.c - the bf16 products of matmul16.c through oneDNN's
 * matmul (see matmul16_onednn.h).
 *
 * All three shapes of a linear layer are one row-major product
 * C (M, N) [+]= A (M, K) B (K, N) whose operands are read either as
 * stored or transposed. Each (layout, accumulate) pair is one primitive
 * whose sizes and leading dimensions are given at execution
 * (DNNL_RUNTIME_DIM_VAL), so six primitives made at start-up serve every
 * shape of every module; oneDNN 2.6 runs them with its JIT bf16 GEMM,
 * measured as fast here as the shape-specialised primitives
 * (bench/kernels/bench_gemm_bf16).
 */
#include "kernels/matmul16_onednn.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    bool a_transposed, b_transposed;
} layouts[TSR_LAYOUT_COUNT] = {{false, true}, {false, false}, {true, false}};

struct tsr_onednn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prims[TSR_LAYOUT_COUNT][2]; /* [layout][accumulate] */
};

static tsr_status dnnl_failed(dnnl_status_t s, const char *what)
{
    return tsr_error_set(TSR_ERR_INTERNAL, "oneDNN: %s failed (dnnl status %d)", what, (int)s);
}

#define DNNL_TRY(call, what)                                                                       \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success)                                                                    \
            return dnnl_failed(s_, what);                                                          \
    } while (0)

static tsr_status make_primitive(dnnl_engine_t engine, tsr_operand_layout layout, bool accumulate,
                                 dnnl_primitive_t *out, char *impl, size_t impl_size)
{
    dnnl_dims_t dims = {DNNL_RUNTIME_DIM_VAL, DNNL_RUNTIME_DIM_VAL};
    dnnl_memory_desc_t a, b, c;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&a, 2, dims, dnnl_bf16,
                                          layouts[layout].a_transposed ? dnnl_ba : dnnl_ab),
             "describing A");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b, 2, dims, dnnl_bf16,
                                          layouts[layout].b_transposed ? dnnl_ba : dnnl_ab),
             "describing B");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&c, 2, dims, dnnl_f32, dnnl_ab), "describing C");
    dnnl_matmul_desc_t desc;
    DNNL_TRY(dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c), "the matmul descriptor");
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success && accumulate) {
        s = dnnl_post_ops_create(&post);
        if (s == dnnl_success)
            s = dnnl_post_ops_append_sum(post, 1.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, post);
    }
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
    if (s == dnnl_success && impl != NULL) {
        const char *name = "";
        if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success)
            snprintf(impl, impl_size, "%s", name);
    }
    if (s == dnnl_success)
        s = dnnl_primitive_create(out, pd);
    if (pd != NULL)
        dnnl_primitive_desc_destroy(pd);
    if (post != NULL)
        dnnl_post_ops_destroy(post);
    if (attr != NULL)
        dnnl_primitive_attr_destroy(attr);
    return s == dnnl_success ? TSR_OK : dnnl_failed(s, "creating the bf16 matmul primitive");
}

bool tsr_onednn_bf16_supported(char *why, size_t why_size)
{
    dnnl_engine_t engine = NULL;
    dnnl_primitive_t prim = NULL;
    char impl[64] = "";
    tsr_status st = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success
                        ? make_primitive(engine, TSR_LAYOUT_A_B_TRANSPOSED, false, &prim, impl,
                                         sizeof impl)
                        : tsr_error_set(TSR_ERR_INTERNAL, "oneDNN has no CPU engine");
    if (prim != NULL)
        dnnl_primitive_destroy(prim);
    if (engine != NULL)
        dnnl_engine_destroy(engine);
    bool reference = strncmp(impl, "ref", 3) == 0;
    if (why != NULL && why_size > 0) {
        if (st != TSR_OK)
            snprintf(why, why_size, "oneDNN has no bf16 matmul for this CPU (%s)",
                     tsr_last_error());
        else if (reference)
            snprintf(why, why_size,
                     "oneDNN offers only its reference bf16 matmul (%s) on this CPU, which lacks "
                     "AVX512-BF16 and AMX",
                     impl);
        else
            why[0] = '\0';
    }
    return st == TSR_OK && !reference;
}

/* the 2-D memory of a (rows, cols) operand stored with leading dimension
 * ld, as the product reads it (transposed: stored as (cols, rows)) */
static dnnl_status_t operand(dnnl_engine_t engine, int64_t rows, int64_t cols, int64_t ld,
                             bool transposed, dnnl_data_type_t type, const void *data,
                             dnnl_memory_t *out)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {transposed ? 1 : ld, transposed ? ld : 1};
    dnnl_memory_desc_t md;
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(&md, 2, dims, type, strides);
    return s == dnnl_success ? dnnl_memory_create(out, &md, engine, (void *)data) : s;
}

tsr_status tsr_onednn_product(tsr_onednn *e, tsr_operand_layout layout, bool accumulate,
                              int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float *c, int64_t ldc)
{
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    dnnl_status_t s =
        operand(e->engine, m, k, lda, layouts[layout].a_transposed, dnnl_bf16, a, &ma);
    if (s == dnnl_success)
        s = operand(e->engine, k, n, ldb, layouts[layout].b_transposed, dnnl_bf16, b, &mb);
    if (s == dnnl_success)
        s = operand(e->engine, m, n, ldc, false, dnnl_f32, c, &mc);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        s = dnnl_primitive_execute(e->prims[layout][accumulate ? 1 : 0], e->stream, 3, args);
    }
    if (s == dnnl_success)
        s = dnnl_stream_wait(e->stream);
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    return s == dnnl_success ? TSR_OK : dnnl_failed(s, "executing a bf16 matmul");
}

tsr_status tsr_onednn_create(tsr_onednn **out, char *impl, size_t impl_size)
{
    *out = NULL;
    tsr_onednn *e = calloc(1, sizeof *e);
    if (e == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "no memory for the oneDNN engine");
    tsr_status st = TSR_OK;
    if (dnnl_engine_create(&e->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&e->stream, e->engine, dnnl_stream_default_flags) != dnnl_success)
        st = tsr_error_set(TSR_ERR_INTERNAL, "oneDNN: no CPU engine or stream");
    for (int l = 0; l < TSR_LAYOUT_COUNT && st == TSR_OK; l++)
        for (int acc = 0; acc < 2 && st == TSR_OK; acc++)
            st = make_primitive(e->engine, (tsr_operand_layout)l, acc == 1, &e->prims[l][acc],
                                l == 0 && acc == 0 ? impl : NULL, impl_size);
    if (st != TSR_OK) {
        tsr_onednn_destroy(e);
        return st;
    }
    *out = e;
    return TSR_OK;
}

void tsr_onednn_destroy(tsr_onednn *e)
{
    if (e == NULL)
        return;
    for (int l = 0; l < TSR_LAYOUT_COUNT; l++)
        for (int acc = 0; acc < 2; acc++)
            if (e->prims[l][acc] != NULL)
                dnnl_primitive_destroy(e->prims[l][acc]);
    if (e->stream != NULL)
        dnnl_stream_destroy(e->stream);
    if (e->engine != NULL)
        dnnl_engine_destroy(e->engine);
    free(e);
}
