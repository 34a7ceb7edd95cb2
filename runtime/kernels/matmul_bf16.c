/*
 * matmul_bf16.c - the bf16 matrix products of --bf16 through oneDNN's
 * matmul (see matmul_bf16.h).
 *
 * All three shapes of a linear layer are one row-major product
 * C (M, N) [+]= A (M, K) B (K, N) whose operands are read either as
 * stored or transposed: the forward reads the weight transposed, the
 * weight gradient reads the output gradient transposed. Each (layout,
 * accumulate) pair is one primitive whose sizes and leading dimensions
 * are given at execution (DNNL_RUNTIME_DIM_VAL), so six primitives made at
 * start-up serve every shape of every module; oneDNN 2.6 runs them with
 * its JIT bf16 GEMM, measured as fast here as the shape-specialised
 * primitives (bench/kernels/bench_gemm_bf16).
 *
 * Operands that are not mapped weights are rounded into the workspace (A
 * and B halves) in blocks of whole rows. Rounding is elementwise, so the
 * bf16 operand of an element is the same in every layout; blocking along
 * the summed dimension only changes the fp32 order of the accumulation.
 */
#include "kernels/matmul_bf16.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/kernels.h"

/* how A and B are stored: as the product reads them, or transposed */
typedef enum operand_layout {
    LAYOUT_A_B_TRANSPOSED = 0, /* forward: inp @ weight^T */
    LAYOUT_A_B,                /* input gradient: dout @ weight */
    LAYOUT_A_TRANSPOSED_B,     /* weight gradient: dout^T @ inp */
    LAYOUT_COUNT
} operand_layout;

static const struct {
    bool a_transposed, b_transposed;
} layouts[LAYOUT_COUNT] = {{false, true}, {false, false}, {true, false}};

typedef struct weight_map {
    const float *master;
    uint16_t *copy;
    size_t count;
} weight_map;

struct tsr_matmul_bf16 {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prims[LAYOUT_COUNT][2]; /* [layout][accumulate] */
    uint16_t *ws_a, *ws_b;
    size_t ws_floats;
    weight_map maps[TSR_MATMUL_BF16_MAX_MAPS];
    int map_count;
    tsr_status status;
    char impl[64];
};

static tsr_matmul_bf16 *active;

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

static tsr_status make_primitive(dnnl_engine_t engine, operand_layout layout, bool accumulate,
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

bool tsr_matmul_bf16_supported(char *why, size_t why_size)
{
    dnnl_engine_t engine = NULL;
    dnnl_primitive_t prim = NULL;
    char impl[64] = "";
    tsr_status st = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success
                        ? make_primitive(engine, LAYOUT_A_B_TRANSPOSED, false, &prim, impl,
                                         sizeof impl)
                        : tsr_error_set(TSR_ERR_INTERNAL, "oneDNN has no CPU engine");
    if (prim != NULL)
        dnnl_primitive_destroy(prim);
    if (engine != NULL)
        dnnl_engine_destroy(engine);
    bool reference = strncmp(impl, "ref", 3) == 0;
    if (why != NULL && why_size > 0) {
        if (st != TSR_OK)
            snprintf(why, why_size, "%s", tsr_last_error());
        else if (reference)
            snprintf(why, why_size,
                     "oneDNN offers only its reference bf16 matmul (%s) on this CPU, which lacks "
                     "AVX512-BF16/AMX: bf16 would train slower than fp32",
                     impl);
        else
            why[0] = '\0';
    }
    return st == TSR_OK && !reference;
}

const char *tsr_matmul_bf16_impl(const tsr_matmul_bf16 *ctx)
{
    return ctx != NULL ? ctx->impl : "";
}

size_t tsr_matmul_bf16_workspace_bytes(size_t operand_floats)
{
    return 2 * operand_floats * sizeof(uint16_t);
}

tsr_status tsr_matmul_bf16_create(void *workspace, size_t operand_floats, tsr_matmul_bf16 **out)
{
    *out = NULL;
    if (workspace == NULL || operand_floats == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "the bf16 matmul needs a workspace");
    tsr_matmul_bf16 *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "no memory for the bf16 matmul context");
    ctx->ws_a = workspace;
    ctx->ws_b = ctx->ws_a + operand_floats;
    ctx->ws_floats = operand_floats;
    tsr_status st = TSR_OK;
    if (dnnl_engine_create(&ctx->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags) != dnnl_success)
        st = tsr_error_set(TSR_ERR_INTERNAL, "oneDNN: no CPU engine or stream");
    for (int l = 0; l < LAYOUT_COUNT && st == TSR_OK; l++)
        for (int acc = 0; acc < 2 && st == TSR_OK; acc++)
            st = make_primitive(ctx->engine, (operand_layout)l, acc == 1, &ctx->prims[l][acc],
                                l == 0 && acc == 0 ? ctx->impl : NULL, sizeof ctx->impl);
    if (st != TSR_OK) {
        tsr_matmul_bf16_destroy(ctx);
        return st;
    }
    *out = ctx;
    return TSR_OK;
}

void tsr_matmul_bf16_destroy(tsr_matmul_bf16 *ctx)
{
    if (ctx == NULL)
        return;
    if (active == ctx)
        active = NULL;
    for (int l = 0; l < LAYOUT_COUNT; l++)
        for (int acc = 0; acc < 2; acc++)
            if (ctx->prims[l][acc] != NULL)
                dnnl_primitive_destroy(ctx->prims[l][acc]);
    if (ctx->stream != NULL)
        dnnl_stream_destroy(ctx->stream);
    if (ctx->engine != NULL)
        dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

tsr_status tsr_matmul_bf16_map(tsr_matmul_bf16 *ctx, const float *master, uint16_t *copy,
                               size_t count)
{
    if (count == 0)
        return TSR_OK;
    if (ctx->map_count == TSR_MATMUL_BF16_MAX_MAPS)
        return tsr_error_set(TSR_ERR_INTERNAL, "more than %d weight ranges mapped to bf16 copies",
                             TSR_MATMUL_BF16_MAX_MAPS);
    ctx->maps[ctx->map_count++] = (weight_map){master, copy, count};
    return TSR_OK;
}

void tsr_matmul_bf16_refresh(tsr_matmul_bf16 *ctx)
{
    for (int i = 0; i < ctx->map_count; i++)
        tsr_bf16_from_floats(ctx->maps[i].copy, ctx->maps[i].master, (int64_t)ctx->maps[i].count);
}

tsr_status tsr_matmul_bf16_take_status(tsr_matmul_bf16 *ctx)
{
    tsr_status st = ctx->status;
    ctx->status = TSR_OK;
    return st;
}

void tsr_matmul_bf16_activate(tsr_matmul_bf16 *ctx)
{
    active = ctx;
}

tsr_matmul_bf16 *tsr_matmul_bf16_active(void)
{
    return active;
}

bool tsr_linear_is_bf16(void)
{
    return active != NULL;
}

/* the bf16 copy of w (count floats), NULL when w is not wholly mapped */
static const uint16_t *mapped_copy(const tsr_matmul_bf16 *ctx, const float *w, size_t count)
{
    for (int i = 0; i < ctx->map_count; i++) {
        const weight_map *m = &ctx->maps[i];
        if (w >= m->master && w + count <= m->master + m->count)
            return m->copy + (w - m->master);
    }
    return NULL;
}

static void fail(tsr_matmul_bf16 *ctx, tsr_status st)
{
    if (ctx->status == TSR_OK)
        ctx->status = st;
}

/* the 2-D memory of a (rows, cols) operand stored with leading dimension
 * ld, as the product reads it (transposed: stored as (cols, rows)) */
static dnnl_status_t operand(const tsr_matmul_bf16 *ctx, int64_t rows, int64_t cols, int64_t ld,
                             bool transposed, dnnl_data_type_t type, const void *data,
                             dnnl_memory_t *out)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {transposed ? 1 : ld, transposed ? ld : 1};
    dnnl_memory_desc_t md;
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(&md, 2, dims, type, strides);
    return s == dnnl_success ? dnnl_memory_create(out, &md, ctx->engine, (void *)data) : s;
}

/* C (m, n; ldc) [+]= A (m, k; lda) B (k, n; ldb) in the layout's storage */
static void product(tsr_matmul_bf16 *ctx, operand_layout layout, bool accumulate, int64_t m,
                    int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *b,
                    int64_t ldb, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0 || k <= 0)
        return;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    dnnl_status_t s = operand(ctx, m, k, lda, layouts[layout].a_transposed, dnnl_bf16, a, &ma);
    if (s == dnnl_success)
        s = operand(ctx, k, n, ldb, layouts[layout].b_transposed, dnnl_bf16, b, &mb);
    if (s == dnnl_success)
        s = operand(ctx, m, n, ldc, false, dnnl_f32, c, &mc);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        s = dnnl_primitive_execute(ctx->prims[layout][accumulate ? 1 : 0], ctx->stream, 3, args);
    }
    if (s == dnnl_success)
        s = dnnl_stream_wait(ctx->stream);
    if (s != dnnl_success)
        fail(ctx, dnnl_failed(s, "executing a bf16 matmul"));
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
}

/* rows of `width` elements that fit the workspace half; 0 (and the
 * context's status set) when not one does */
static int64_t block_rows(tsr_matmul_bf16 *ctx, int64_t width, int64_t total)
{
    int64_t fit = (int64_t)ctx->ws_floats / width;
    if (fit < 1) {
        fail(ctx, tsr_error_set(TSR_ERR_INTERNAL,
                                "a bf16 matmul operand row of %lld elements exceeds the "
                                "workspace (%zu)",
                                (long long)width, ctx->ws_floats));
        return 0;
    }
    return fit < total ? fit : total;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

void tsr_matmul_bf16_linear_forward(tsr_matmul_bf16 *ctx, float *out, const float *inp,
                                    const float *weight, int64_t n, int64_t in_features,
                                    int64_t out_features, bool accumulate)
{
    int64_t ic = in_features, oc = out_features;
    const uint16_t *wb = mapped_copy(ctx, weight, (size_t)(oc * ic));
    int64_t x_rows = block_rows(ctx, ic, n), w_rows = wb != NULL ? oc : block_rows(ctx, ic, oc);
    if (x_rows == 0 || w_rows == 0)
        return;
    for (int64_t r0 = 0; r0 < n; r0 += x_rows) {
        int64_t rows = min64(x_rows, n - r0);
        tsr_bf16_from_floats(ctx->ws_a, inp + r0 * ic, rows * ic);
        for (int64_t w0 = 0; w0 < oc; w0 += w_rows) {
            int64_t cols = min64(w_rows, oc - w0);
            const uint16_t *b = wb != NULL ? wb + w0 * ic : ctx->ws_b;
            if (wb == NULL)
                tsr_bf16_from_floats(ctx->ws_b, weight + w0 * ic, cols * ic);
            product(ctx, LAYOUT_A_B_TRANSPOSED, accumulate, rows, cols, ic, ctx->ws_a, ic, b, ic,
                    out + r0 * oc + w0, oc);
        }
    }
}

void tsr_matmul_bf16_linear_backward(tsr_matmul_bf16 *ctx, float *dinp, float *dweight,
                                     const float *dout, const float *inp, const float *weight,
                                     int64_t n, int64_t in_features, int64_t out_features)
{
    int64_t ic = in_features, oc = out_features;
    int64_t held = 0; /* rows of dout [0, held) already rounded into ws_a */
    if (dinp != NULL) {
        const uint16_t *wb = mapped_copy(ctx, weight, (size_t)(oc * ic));
        int64_t d_rows = block_rows(ctx, oc, n);
        int64_t k_rows = wb != NULL ? oc : block_rows(ctx, ic, oc);
        if (d_rows == 0 || k_rows == 0)
            return;
        for (int64_t r0 = 0; r0 < n; r0 += d_rows) {
            int64_t rows = min64(d_rows, n - r0);
            tsr_bf16_from_floats(ctx->ws_a, dout + r0 * oc, rows * oc);
            for (int64_t k0 = 0; k0 < oc; k0 += k_rows) {
                int64_t depth = min64(k_rows, oc - k0);
                const uint16_t *b = wb != NULL ? wb + k0 * ic : ctx->ws_b;
                if (wb == NULL)
                    tsr_bf16_from_floats(ctx->ws_b, weight + k0 * ic, depth * ic);
                product(ctx, LAYOUT_A_B, true, rows, ic, depth, ctx->ws_a + k0, oc, b, ic,
                        dinp + r0 * ic, ic);
            }
        }
        held = d_rows >= n ? n : 0;
    }
    if (dweight == NULL)
        return;
    int64_t k_rows = min64(block_rows(ctx, oc, n), block_rows(ctx, ic, n));
    if (k_rows == 0)
        return;
    for (int64_t r0 = 0; r0 < n; r0 += k_rows) {
        int64_t rows = min64(k_rows, n - r0);
        if (!(r0 == 0 && rows <= held))
            tsr_bf16_from_floats(ctx->ws_a, dout + r0 * oc, rows * oc);
        tsr_bf16_from_floats(ctx->ws_b, inp + r0 * ic, rows * ic);
        product(ctx, LAYOUT_A_TRANSPOSED_B, true, oc, ic, rows, ctx->ws_a, oc, ctx->ws_b, ic,
                dweight, ic);
    }
}
