/*
 * matmul16.c - the 16-bit products of the linear kernels (matmul16.h):
 * weight copies, operand rounding in row blocks, and the two engines.
 *
 * Operands that are not mapped weights are rounded into the workspace (A
 * and B halves) in blocks of whole rows. Rounding is elementwise, so the
 * rounded operand of an element is the same in every layout; blocking
 * along the summed dimension only changes the fp32 order of the
 * accumulation.
 */
#include "kernels/matmul16.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/matmul16_onednn.h"
#include "tessera/kernels.h"
#include "tessera/timer.h"

typedef struct weight_map {
    const float *master;
    char *copy;
    size_t count;
    bool refreshed;
} weight_map;

struct tsr_matmul16 {
    tsr_matmul16_format format;
    size_t esize;        /* bytes of a weight copy's element */
    size_t ws_esize;     /* bytes of a workspace operand's element */
    tsr_onednn *onednn;  /* the oneDNN engine's; NULL under sgemm */
    /* sgemm reads fp32 operands: mapped bf16 copies are widened into the
     * workspace block by block rather than read in place */
    bool widens_copies;
    char *ws_a, *ws_b;   /* ws_floats elements each */
    size_t ws_floats;
    weight_map maps[TSR_MATMUL16_MAX_MAPS];
    int map_count;
    tsr_status status;
    char impl[80];
    tsr_matmul16_times times;
};

static tsr_matmul16 *active;

const char *tsr_matmul16_format_name(tsr_matmul16_format format)
{
    return format == TSR_MATMUL16_FP16 ? "fp16" : "bf16";
}

tsr_matmul16_engine tsr_matmul16_engine_for(tsr_matmul16_format format, char *why,
                                            size_t why_size)
{
    static int onednn_runs = -1; /* the probe makes a primitive: once */
    static char reason[256];
    if (format == TSR_MATMUL16_BF16 && onednn_runs < 0)
        onednn_runs = tsr_onednn_bf16_supported(reason, sizeof reason) ? 1 : 0;
    bool onednn = format == TSR_MATMUL16_BF16 && onednn_runs == 1;
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "%s",
                 onednn ? "" : format == TSR_MATMUL16_BF16 ? reason : "oneDNN 2.6 has no fp16 "
                                                                      "matmul for this CPU");
    return onednn ? TSR_MATMUL16_ONEDNN : TSR_MATMUL16_SGEMM;
}

bool tsr_matmul16_engine_runs(tsr_matmul16_format format, tsr_matmul16_engine engine, char *why,
                              size_t why_size)
{
    if (engine == TSR_MATMUL16_SGEMM) {
        if (why != NULL && why_size > 0)
            why[0] = '\0';
        return true;
    }
    return tsr_matmul16_engine_for(format, why, why_size) == TSR_MATMUL16_ONEDNN;
}

const char *tsr_matmul16_impl(const tsr_matmul16 *ctx)
{
    return ctx != NULL ? ctx->impl : "";
}

size_t tsr_matmul16_element_bytes(tsr_matmul16_format format)
{
    (void)format; /* bf16 bits or IEEE half bits */
    return sizeof(uint16_t);
}

static size_t operand_element_bytes(tsr_matmul16_engine engine)
{
    return engine == TSR_MATMUL16_ONEDNN ? sizeof(uint16_t) : sizeof(float);
}

size_t tsr_matmul16_workspace_bytes(tsr_matmul16_format format, tsr_matmul16_engine engine,
                                    size_t operand_floats)
{
    (void)format;
    return 2 * operand_floats * operand_element_bytes(engine);
}

tsr_status tsr_matmul16_create(tsr_matmul16_format format, tsr_matmul16_engine engine,
                               void *workspace, size_t operand_floats, tsr_matmul16 **out)
{
    *out = NULL;
    char why[256];
    if (!tsr_matmul16_engine_runs(format, engine, why, sizeof why))
        return tsr_error_set(TSR_ERR_UNSUPPORTED, "%s products through oneDNN cannot run here: %s",
                             tsr_matmul16_format_name(format), why);
    if (workspace == NULL || operand_floats == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "the 16-bit products need a workspace");
    tsr_matmul16 *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "no memory for the 16-bit product context");
    ctx->format = format;
    ctx->esize = tsr_matmul16_element_bytes(format);
    ctx->ws_esize = operand_element_bytes(engine);
    ctx->widens_copies = ctx->esize != ctx->ws_esize;
    ctx->ws_a = workspace;
    ctx->ws_b = ctx->ws_a + operand_floats * ctx->ws_esize;
    ctx->ws_floats = operand_floats;
    if (engine == TSR_MATMUL16_ONEDNN) {
        char impl[64] = "";
        tsr_status st = tsr_onednn_create(&ctx->onednn, impl, sizeof impl);
        if (st != TSR_OK) {
            free(ctx);
            return st;
        }
        snprintf(ctx->impl, sizeof ctx->impl, "oneDNN %s", impl);
    } else {
        snprintf(ctx->impl, sizeof ctx->impl, "sgemm on %s-rounded operands",
                 tsr_matmul16_format_name(format));
    }
    *out = ctx;
    return TSR_OK;
}

void tsr_matmul16_destroy(tsr_matmul16 *ctx)
{
    if (ctx == NULL)
        return;
    if (active == ctx)
        active = NULL;
    tsr_onednn_destroy(ctx->onednn);
    free(ctx);
}

tsr_status tsr_matmul16_map(tsr_matmul16 *ctx, const float *master, void *copy, size_t count,
                            bool refreshed)
{
    if (count == 0)
        return TSR_OK;
    if (ctx->map_count == TSR_MATMUL16_MAX_MAPS)
        return tsr_error_set(TSR_ERR_INTERNAL, "more than %d weight ranges mapped to 16-bit copies",
                             TSR_MATMUL16_MAX_MAPS);
    ctx->maps[ctx->map_count++] = (weight_map){master, copy, count, refreshed};
    return TSR_OK;
}

/* n floats of src rounded to the context's format at dst, as a weight
 * copy holds them: 16-bit patterns */
static void round_elements(const tsr_matmul16 *ctx, void *dst, const float *src, int64_t n)
{
    if (ctx->format == TSR_MATMUL16_BF16)
        tsr_bf16_from_floats(dst, src, n);
    else
        tsr_fp16_from_floats(dst, src, n);
}

/* the same as an operand of the engine: bf16 bits for oneDNN, the fp32
 * values of the roundings for sgemm */
static void round_operand(const tsr_matmul16 *ctx, void *dst, const float *src, int64_t n)
{
    if (ctx->ws_esize == ctx->esize)
        round_elements(ctx, dst, src, n);
    else if (ctx->format == TSR_MATMUL16_BF16)
        tsr_bf16_round_floats(dst, src, n);
    else
        tsr_fp16_round_floats(dst, src, n);
}

void tsr_matmul16_refresh(tsr_matmul16 *ctx)
{
    uint64_t t0 = tsr_time_ns();
    for (int i = 0; i < ctx->map_count; i++)
        if (ctx->maps[i].refreshed)
            round_elements(ctx, ctx->maps[i].copy, ctx->maps[i].master,
                           (int64_t)ctx->maps[i].count);
    ctx->times.refresh_s += (double)(tsr_time_ns() - t0) * 1e-9;
}

void tsr_matmul16_round(tsr_matmul16 *ctx, void *dst, const float *src, size_t n)
{
    uint64_t t0 = tsr_time_ns();
    round_elements(ctx, dst, src, (int64_t)n);
    ctx->times.refresh_s += (double)(tsr_time_ns() - t0) * 1e-9;
}

void tsr_matmul16_widen(tsr_matmul16 *ctx, float *dst, const void *src, size_t n)
{
    uint64_t t0 = tsr_time_ns();
    tsr_matmul16_widen_copy(ctx, dst, src, n);
    ctx->times.refresh_s += (double)(tsr_time_ns() - t0) * 1e-9;
}

tsr_matmul16_times tsr_matmul16_times_of(const tsr_matmul16 *ctx)
{
    return ctx->times;
}

tsr_status tsr_matmul16_take_status(tsr_matmul16 *ctx)
{
    tsr_status st = ctx->status;
    ctx->status = TSR_OK;
    return st;
}

void tsr_matmul16_activate(tsr_matmul16 *ctx)
{
    active = ctx;
}

tsr_matmul16 *tsr_matmul16_active(void)
{
    return active;
}

const char *tsr_linear_precision(void)
{
    return active == NULL ? "fp32" : tsr_matmul16_format_name(active->format);
}

/* the rounded copy of w (count floats), NULL when w is not wholly mapped */
static const char *mapped_copy(const tsr_matmul16 *ctx, const float *w, size_t count)
{
    for (int i = 0; i < ctx->map_count; i++) {
        const weight_map *m = &ctx->maps[i];
        if (w >= m->master && w + count <= m->master + m->count)
            return m->copy + (size_t)(w - m->master) * ctx->esize;
    }
    return NULL;
}

const void *tsr_matmul16_copy_of(const tsr_matmul16 *ctx, const float *w, size_t count)
{
    return mapped_copy(ctx, w, count);
}

size_t tsr_matmul16_copy_element_bytes(const tsr_matmul16 *ctx)
{
    return ctx->esize;
}

void tsr_matmul16_widen_copy(const tsr_matmul16 *ctx, float *dst, const void *copy, size_t n)
{
    if (ctx->format == TSR_MATMUL16_BF16)
        tsr_floats_from_bf16(dst, copy, (int64_t)n);
    else
        tsr_floats_from_fp16(dst, copy, (int64_t)n);
}

static void fail(tsr_matmul16 *ctx, tsr_status st)
{
    if (ctx->status == TSR_OK)
        ctx->status = st;
}

/* element i of a workspace operand */
static const char *at(const tsr_matmul16 *ctx, const char *base, int64_t i)
{
    return base + (size_t)i * ctx->ws_esize;
}

/* C (m, n; ldc) [+]= A (m, k) B (k, n), stored as the layout says with
 * leading dimensions lda, ldb */
static void product(tsr_matmul16 *ctx, tsr_operand_layout layout, bool accumulate, int64_t m,
                    int64_t n, int64_t k, const char *a, int64_t lda, const char *b, int64_t ldb,
                    float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0 || k <= 0)
        return;
    uint64_t t0 = tsr_time_ns();
    if (ctx->onednn != NULL) {
        tsr_status st = tsr_onednn_product(ctx->onednn, layout, accumulate, m, n, k,
                                           (const uint16_t *)a, lda, (const uint16_t *)b, ldb, c,
                                           ldc);
        if (st != TSR_OK)
            fail(ctx, st);
    } else {
        enum CBLAS_TRANSPOSE ta = layout == TSR_LAYOUT_A_TRANSPOSED_B ? CblasTrans : CblasNoTrans;
        enum CBLAS_TRANSPOSE tb = layout == TSR_LAYOUT_A_B_TRANSPOSED ? CblasTrans : CblasNoTrans;
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                    (const float *)a, (blasint)lda, (const float *)b, (blasint)ldb,
                    accumulate ? 1.0f : 0.0f, c, (blasint)ldc);
    }
    ctx->times.product_s += (double)(tsr_time_ns() - t0) * 1e-9;
    ctx->times.flops += 2.0 * (double)m * (double)n * (double)k;
}

/* operand rounding into the workspace, timed */
static void round_into(tsr_matmul16 *ctx, char *dst, const float *src, int64_t n)
{
    uint64_t t0 = tsr_time_ns();
    round_operand(ctx, dst, src, n);
    ctx->times.rounding_s += (double)(tsr_time_ns() - t0) * 1e-9;
}

/* rows of `width` elements that fit a workspace half; 0 (and the
 * context's status set) when not one does */
static int64_t block_rows(tsr_matmul16 *ctx, int64_t width, int64_t total)
{
    int64_t fit = (int64_t)ctx->ws_floats / width;
    if (fit < 1) {
        fail(ctx, tsr_error_set(TSR_ERR_INTERNAL,
                                "a 16-bit product's operand row of %lld elements exceeds the "
                                "workspace (%zu)",
                                (long long)width, ctx->ws_floats));
        return 0;
    }
    return fit < total ? fit : total;
}

/* rows [r0, r0 + count) of a (rows, ic) weight, rounded: from its mapped
 * copy wb (in place, or widened into ws_b), else rounded into ws_b */
static const char *weight_rows(tsr_matmul16 *ctx, const char *wb, const float *weight, int64_t r0,
                               int64_t count, int64_t ic)
{
    if (wb == NULL) {
        round_into(ctx, ctx->ws_b, weight + r0 * ic, count * ic);
        return ctx->ws_b;
    }
    const char *rows = wb + (size_t)(r0 * ic) * ctx->esize;
    if (!ctx->widens_copies)
        return rows;
    uint64_t t0 = tsr_time_ns(); /* the copy's 16-bit values, exactly, as fp32 */
    tsr_matmul16_widen_copy(ctx, (float *)ctx->ws_b, rows, (size_t)(count * ic));
    ctx->times.rounding_s += (double)(tsr_time_ns() - t0) * 1e-9;
    return ctx->ws_b;
}

/* rows of a weight taken at a time: all of a copy read in place, else
 * what fits ws_b */
static int64_t weight_block_rows(tsr_matmul16 *ctx, const char *wb, int64_t ic, int64_t rows)
{
    return wb != NULL && !ctx->widens_copies ? rows : block_rows(ctx, ic, rows);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

void tsr_matmul16_linear_forward(tsr_matmul16 *ctx, float *out, const float *inp,
                                 const float *weight, int64_t n, int64_t in_features,
                                 int64_t out_features, bool accumulate)
{
    int64_t ic = in_features, oc = out_features;
    const char *wb = mapped_copy(ctx, weight, (size_t)(oc * ic));
    int64_t x_rows = block_rows(ctx, ic, n), w_rows = weight_block_rows(ctx, wb, ic, oc);
    if (x_rows == 0 || w_rows == 0)
        return;
    for (int64_t r0 = 0; r0 < n; r0 += x_rows) {
        int64_t rows = min64(x_rows, n - r0);
        round_into(ctx, ctx->ws_a, inp + r0 * ic, rows * ic);
        for (int64_t w0 = 0; w0 < oc; w0 += w_rows) { /* weight rows: output columns */
            int64_t cols = min64(w_rows, oc - w0);
            product(ctx, TSR_LAYOUT_A_B_TRANSPOSED, accumulate, rows, cols, ic, ctx->ws_a, ic,
                    weight_rows(ctx, wb, weight, w0, cols, ic), ic, out + r0 * oc + w0, oc);
        }
    }
}

void tsr_matmul16_linear_backward(tsr_matmul16 *ctx, float *dinp, float *dweight,
                                  const float *dout, const float *inp, const float *weight,
                                  int64_t n, int64_t in_features, int64_t out_features)
{
    int64_t ic = in_features, oc = out_features;
    int64_t held = 0; /* rows of dout [0, held) already rounded into ws_a */
    if (dinp != NULL) {
        const char *wb = mapped_copy(ctx, weight, (size_t)(oc * ic));
        int64_t d_rows = block_rows(ctx, oc, n);
        int64_t k_rows = weight_block_rows(ctx, wb, ic, oc);
        if (d_rows == 0 || k_rows == 0)
            return;
        for (int64_t r0 = 0; r0 < n; r0 += d_rows) {
            int64_t rows = min64(d_rows, n - r0);
            round_into(ctx, ctx->ws_a, dout + r0 * oc, rows * oc);
            for (int64_t k0 = 0; k0 < oc; k0 += k_rows) { /* weight rows: the summed dim */
                int64_t depth = min64(k_rows, oc - k0);
                product(ctx, TSR_LAYOUT_A_B, true, rows, ic, depth, at(ctx, ctx->ws_a, k0), oc,
                        weight_rows(ctx, wb, weight, k0, depth, ic), ic, dinp + r0 * ic, ic);
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
            round_into(ctx, ctx->ws_a, dout + r0 * oc, rows * oc);
        round_into(ctx, ctx->ws_b, inp + r0 * ic, rows * ic);
        product(ctx, TSR_LAYOUT_A_TRANSPOSED_B, true, oc, ic, rows, ctx->ws_a, oc, ctx->ws_b, ic,
                dweight, ic);
    }
}
