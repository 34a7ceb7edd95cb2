/*
 * test_kernels_matmul16.c - --bf16's and --fp16's conversions and matrix
 * products (kernels.h, kernels/matmul16.h).
 *
 * Conversions: each rounding rule on chosen values, and the array paths
 * (AVX512-BF16 and AVX-512's vcvtps2ph when the CPU has them) bitwise
 * equal to the scalar rules. Products, in each format and engine that can
 * run here (bf16 on oneDNN and on sgemm over rounded operands, fp16 on
 * sgemm), the engine chosen for a run, and refusals:
 * the linear kernels under an active context against a double-precision
 * product of the same rounded operands (fp32 accumulation: <= 1e-5
 * relative to the largest output), against the fp32 kernels (<= 1e-2
 * relative L2 for bf16, 1e-3 for fp16), mapped weight copies bitwise
 * equal to weights rounded on the fly, row blocking of a small workspace
 * within 1e-5, accumulation, the bias, fp16's overflow to inf, and a
 * failure reported.
 */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "kernel_check.h"
#include "kernels/matmul16.h"
#include "tessera/kernels.h"

static float bits_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void test_bf16_rounding_rule(void)
{
    CU_ASSERT_EQUAL(tsr_bf16_of_float(1.0f), 0x3f80);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(1.00390625f), 0x3f80); /* tie: to even (down) */
    CU_ASSERT_EQUAL(tsr_bf16_of_float(1.01171875f), 0x3f82); /* tie: to even (up) */
    CU_ASSERT_EQUAL(tsr_bf16_of_float(bits_float(0x3f808001u)), 0x3f81); /* above the tie */
    CU_ASSERT_EQUAL(tsr_bf16_of_float(-0.0f), 0x8000);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(INFINITY), 0x7f80);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(-INFINITY), 0xff80);
    CU_ASSERT_EQUAL(tsr_bf16_of_float(bits_float(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds up */
    CU_ASSERT_EQUAL(tsr_bf16_of_float(bits_float(0x00400000u)), 0x0000); /* denormal: zero */
    CU_ASSERT_EQUAL(tsr_bf16_of_float(bits_float(0x80000001u)), 0x8000);
    uint16_t nan = tsr_bf16_of_float(bits_float(0x7f800001u)); /* signalling NaN */
    CU_ASSERT_TRUE((nan & 0x7f80) == 0x7f80 && (nan & 0x007f) != 0);
    CU_ASSERT_TRUE(isnan(tsr_float_of_bf16(nan)));
    CU_ASSERT_EQUAL(tsr_float_of_bf16(0x4049), 3.140625f);
}

static void test_bf16_array_path_equals_rule(void)
{
    int64_t n = 100003; /* not a multiple of 16 */
    float *x = kc_alloc(n), *back = kc_alloc(n);
    kc_fill_normal(x, n, 11, 0.0f, 3.0f);
    const uint32_t special[] = {0x7f800001u, 0xff800000u, 0x00000001u, 0x807fffffu,
                                0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x00800000u};
    for (int i = 0; i < 8; i++)
        x[i * 1000 + 7] = bits_float(special[i]);
    uint16_t *h = calloc((size_t)n, sizeof *h);
    tsr_bf16_from_floats(h, x, n);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++)
        differ += h[i] != tsr_bf16_of_float(x[i]);
    CU_ASSERT_EQUAL(differ, 0);
    tsr_floats_from_bf16(back, h, n);
    float *rounded = kc_alloc(n);
    memcpy(rounded, x, (size_t)n * sizeof *x);
    tsr_bf16_round_floats(rounded, rounded, n); /* in place: what held activations get */
    CU_ASSERT_EQUAL(memcmp(rounded, back, (size_t)n * sizeof *x), 0);
    free(rounded);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) > 1e-30f && fabsf(x[i]) < 1e38f) /* normal, no overflow */
            worst = fmax(worst, fabs((double)back[i] - x[i]) / fabs((double)x[i]));
    CU_ASSERT_TRUE(worst <= 1.0 / 256.0); /* half a bf16 ulp: 2^-8 relative */
    printf("  vector conversion %s; worst round trip %.3g\n",
           tsr_bf16_has_vector_convert() ? "AVX512-BF16" : "scalar", worst);
    free(h);
    free(x);
    free(back);
}

static void test_fp16_rounding_rule(void)
{
    CU_ASSERT_EQUAL(tsr_fp16_of_float(1.0f), 0x3c00);
    CU_ASSERT_EQUAL(tsr_fp16_of_float(-2.0f), 0xc000);
    CU_ASSERT_EQUAL(tsr_fp16_of_float(65504.0f), 0x7bff);     /* the largest half */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(65519.0f), 0x7bff);     /* below the tie */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(65520.0f), 0x7c00);     /* the tie: to even, inf */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(-1e30f), 0xfc00);
    CU_ASSERT_EQUAL(tsr_fp16_of_float(1.0f + 0x1p-11f), 0x3c00); /* tie: to even (down) */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(1.0f + 0x3p-11f), 0x3c02); /* tie: to even (up) */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(0x1p-14f), 0x0400);     /* the smallest normal */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(0x1p-24f), 0x0001);     /* the smallest subnormal */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(0x1p-25f), 0x0000);     /* tie: to even (zero) */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(0x3p-25f), 0x0002);     /* tie: to even (up) */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(0x1.ffcp-15f), 0x0400); /* rounds up into the normals */
    CU_ASSERT_EQUAL(tsr_fp16_of_float(-0.0f), 0x8000);
    uint16_t nan = tsr_fp16_of_float(bits_float(0x7f800001u));
    CU_ASSERT_TRUE((nan & 0x7c00) == 0x7c00 && (nan & 0x03ff) != 0);
    CU_ASSERT_EQUAL(tsr_float_of_fp16(0x3555), 0x1.554p-2f);
    CU_ASSERT_EQUAL(tsr_float_of_fp16(0x0003), 0x3p-24f);
    CU_ASSERT_TRUE(isinf(tsr_float_of_fp16(0xfc00)) && tsr_float_of_fp16(0xfc00) < 0);
}

static void test_fp16_array_path_equals_rule(void)
{
    int64_t n = 100003;
    float *x = kc_alloc(n), *got = kc_alloc(n);
    kc_fill_normal(x, n, 13, 0.0f, 3.0f);
    for (int64_t i = 0; i < n; i += 97) /* subnormal halves and overflows too */
        x[i] *= (i / 97) % 2 == 0 ? 1e-6f : 3e4f;
    x[5] = bits_float(0x7f800001u);
    tsr_fp16_round_floats(got, x, n);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) {
        float want = tsr_float_of_fp16(tsr_fp16_of_float(x[i]));
        differ += memcmp(&want, got + i, sizeof want) != 0;
    }
    CU_ASSERT_EQUAL(differ, 0);
    /* whole halves (held activations): the rule's bits, and back to the
     * rounded values */
    uint16_t *h = calloc((size_t)n, sizeof *h);
    float *back = kc_alloc(n);
    tsr_fp16_from_floats(h, x, n);
    int64_t halves_differ = 0;
    for (int64_t i = 0; i < n; i++)
        halves_differ += h[i] != tsr_fp16_of_float(x[i]);
    CU_ASSERT_EQUAL(halves_differ, 0);
    tsr_floats_from_fp16(back, h, n);
    CU_ASSERT_EQUAL(memcmp(back, got, (size_t)n * sizeof *got), 0);
    free(h);
    free(back);
    free(x);
    free(got);
}

/* ---- products ---------------------------------------------------------- */

typedef struct problem {
    int64_t n, ic, oc;
    float *x, *w, *b, *dy;
} problem;

static problem problem_make(int64_t n, int64_t ic, int64_t oc, uint64_t seed)
{
    problem p = {n, ic, oc, kc_alloc(n * ic), kc_alloc(oc * ic), kc_alloc(oc), kc_alloc(n * oc)};
    kc_fill_normal(p.x, n * ic, seed, 0.0f, 1.0f);
    kc_fill_normal(p.w, oc * ic, seed + 1, 0.0f, 0.05f);
    kc_fill_normal(p.b, oc, seed + 2, 0.0f, 0.1f);
    kc_fill_normal(p.dy, n * oc, seed + 3, 0.0f, 1.0f);
    return p;
}

static void problem_free(problem *p)
{
    free(p->x);
    free(p->w);
    free(p->b);
    free(p->dy);
}

static tsr_matmul16_format format; /* of the product tests running */
static tsr_matmul16_engine engine; /* and what multiplies */

static double rounded(float v)
{
    return format == TSR_MATMUL16_BF16 ? (double)tsr_float_of_bf16(tsr_bf16_of_float(v))
                                       : (double)tsr_float_of_fp16(tsr_fp16_of_float(v));
}

/* out (rows, cols) = sum_k A(r, k) B(k, c), operands rounded to bf16 */
static void reference(double *out, const float *a, int64_t a_r, int64_t a_k, const float *b,
                      int64_t b_k, int64_t b_c, int64_t rows, int64_t cols, int64_t depth)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double s = 0.0;
            for (int64_t k = 0; k < depth; k++)
                s += rounded(a[r * a_r + k * a_k]) * rounded(b[k * b_k + c * b_c]);
            out[r * cols + c] = s;
        }
}

static double max_err(const float *got, const double *want, int64_t count)
{
    double err = 0.0, scale = 0.0;
    for (int64_t i = 0; i < count; i++) {
        err = fmax(err, fabs(got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    return err / scale;
}

static double rel_l2(const float *a, const float *b, int64_t count)
{
    double d = 0.0, s = 0.0;
    for (int64_t i = 0; i < count; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d / s);
}

typedef struct outputs {
    float *y, *dx, *dw, *db;
} outputs;

static outputs outputs_make(const problem *p)
{
    return (outputs){kc_alloc(p->n * p->oc), kc_alloc(p->n * p->ic), kc_alloc(p->oc * p->ic),
                     kc_alloc(p->oc)};
}

static void outputs_free(outputs *o)
{
    free(o->y);
    free(o->dx);
    free(o->dw);
    free(o->db);
}

static void run_linear(const problem *p, const float *w, outputs *o)
{
    tsr_linear_forward(o->y, p->x, w, p->b, p->n, p->ic, p->oc);
    tsr_linear_backward(o->dx, o->dw, o->db, p->dy, p->x, w, p->n, p->ic, p->oc);
}

typedef struct context {
    tsr_matmul16 *ctx;
    void *workspace;
} context;

static context context_make(size_t operand_floats)
{
    context c = {NULL, malloc(tsr_matmul16_workspace_bytes(format, engine, operand_floats))};
    CU_ASSERT_EQUAL_FATAL(tsr_matmul16_create(format, engine, c.workspace, operand_floats, &c.ctx),
                          TSR_OK);
    return c;
}

static void context_free(context *c)
{
    tsr_matmul16_destroy(c->ctx);
    free(c->workspace);
}

static void test_products_against_rounded_reference(void)
{
    problem p = problem_make(67, 129, 45, 21); /* awkward sizes */
    context c = context_make(1 << 16);
    outputs bf = outputs_make(&p), fp = outputs_make(&p);
    run_linear(&p, p.w, &fp);
    CU_ASSERT_STRING_EQUAL(tsr_linear_precision(), "fp32");
    tsr_matmul16_activate(c.ctx);
    CU_ASSERT_STRING_EQUAL(tsr_linear_precision(), tsr_matmul16_format_name(format));
    run_linear(&p, p.w, &bf);
    CU_ASSERT_EQUAL(tsr_matmul16_take_status(c.ctx), TSR_OK);
    double *ry = calloc((size_t)(p.n * p.oc), sizeof(double));
    double *rdx = calloc((size_t)(p.n * p.ic), sizeof(double));
    double *rdw = calloc((size_t)(p.oc * p.ic), sizeof(double));
    reference(ry, p.x, p.ic, 1, p.w, 1, p.ic, p.n, p.oc, p.ic);
    for (int64_t i = 0; i < p.n * p.oc; i++)
        ry[i] += p.b[i % p.oc];
    reference(rdx, p.dy, p.oc, 1, p.w, p.ic, 1, p.n, p.ic, p.oc);
    reference(rdw, p.dy, 1, p.oc, p.x, p.ic, 1, p.oc, p.ic, p.n);
    double ey = max_err(bf.y, ry, p.n * p.oc), edx = max_err(bf.dx, rdx, p.n * p.ic),
           edw = max_err(bf.dw, rdw, p.oc * p.ic);
    CU_ASSERT_TRUE(ey <= 1e-5 && edx <= 1e-5 && edw <= 1e-5);
    double ly = rel_l2(bf.y, fp.y, p.n * p.oc), ldx = rel_l2(bf.dx, fp.dx, p.n * p.ic),
           ldw = rel_l2(bf.dw, fp.dw, p.oc * p.ic);
    double tol = format == TSR_MATMUL16_BF16 ? 1e-2 : 1e-3;
    CU_ASSERT_TRUE(ly <= tol && ldx <= tol && ldw <= tol);
    CU_ASSERT_TRUE(ly > 0.0); /* the products really were 16-bit */
    CU_ASSERT_EQUAL(memcmp(bf.db, fp.db, sizeof(float) * (size_t)p.oc), 0); /* bias stays fp32 */
    printf("  %s: vs rounded reference %.2g %.2g %.2g; vs fp32 (rel L2) %.2g %.2g %.2g; %s\n",
           tsr_matmul16_format_name(format), ey,
           edx, edw, ly, ldx, ldw, tsr_matmul16_impl(c.ctx));
    free(ry);
    free(rdx);
    free(rdw);
    outputs_free(&bf);
    outputs_free(&fp);
    context_free(&c);
    CU_ASSERT_STRING_EQUAL(tsr_linear_precision(), "fp32"); /* destroying it ends it */
    problem_free(&p);
}

static void test_mapped_copy_and_blocking(void)
{
    problem p = problem_make(300, 96, 80, 31);
    context big = context_make(1 << 16), small = context_make(200); /* 2 rows of 96 */
    void *copy = calloc((size_t)(p.oc * p.ic), tsr_matmul16_element_bytes(format));
    CU_ASSERT_EQUAL(tsr_matmul16_map(big.ctx, p.w, copy, (size_t)(p.oc * p.ic), true), TSR_OK);
    outputs on_the_fly = outputs_make(&p), mapped = outputs_make(&p), blocked = outputs_make(&p);
    float *w_alias = kc_alloc(p.oc * p.ic); /* the same values, not mapped */
    memcpy(w_alias, p.w, sizeof(float) * (size_t)(p.oc * p.ic));
    tsr_matmul16_refresh(big.ctx);
    tsr_matmul16_activate(big.ctx);
    run_linear(&p, w_alias, &on_the_fly);
    run_linear(&p, p.w, &mapped);
    tsr_matmul16_activate(small.ctx);
    run_linear(&p, p.w, &blocked);
    CU_ASSERT_EQUAL(tsr_matmul16_take_status(small.ctx), TSR_OK);
    int64_t ny = p.n * p.oc, ndx = p.n * p.ic, ndw = p.oc * p.ic;
    CU_ASSERT_EQUAL(memcmp(on_the_fly.y, mapped.y, sizeof(float) * (size_t)ny), 0);
    CU_ASSERT_EQUAL(memcmp(on_the_fly.dx, mapped.dx, sizeof(float) * (size_t)ndx), 0);
    CU_ASSERT_EQUAL(memcmp(on_the_fly.dw, mapped.dw, sizeof(float) * (size_t)ndw), 0);
    double by = rel_l2(blocked.y, mapped.y, ny), bdx = rel_l2(blocked.dx, mapped.dx, ndx),
           bdw = rel_l2(blocked.dw, mapped.dw, ndw);
    CU_ASSERT_TRUE(by <= 1e-5 && bdx <= 1e-5 && bdw <= 1e-5);
    printf("  %s: workspace of 2 rows against one block: %.2g %.2g %.2g\n",
           tsr_matmul16_format_name(format), by, bdx, bdw);
    /* a second backward accumulates: twice the gradients */
    tsr_linear_backward(blocked.dx, blocked.dw, NULL, p.dy, p.x, p.w, p.n, p.ic, p.oc);
    float *twice = kc_alloc(ndw);
    for (int64_t i = 0; i < ndw; i++)
        twice[i] = 2.0f * mapped.dw[i];
    CU_ASSERT_TRUE(rel_l2(blocked.dw, twice, ndw) <= 1e-5);
    /* forward_add adds the product to what out holds */
    float *sum = kc_alloc(ny);
    memcpy(sum, mapped.y, sizeof(float) * (size_t)ny);
    tsr_matmul16_activate(big.ctx);
    tsr_linear_forward_add(sum, p.x, p.w, p.n, p.ic, p.oc);
    double worst = 0.0;
    for (int64_t i = 0; i < ny; i++) /* y holds bias + P; sum: bias + 2P */
        worst = fmax(worst, fabs((double)sum[i] - (2.0 * mapped.y[i] - p.b[i % p.oc])));
    CU_ASSERT_TRUE(worst <= 1e-4);
    /* a row wider than the workspace is an error the trainer reads */
    context tiny = context_make(50);
    tsr_matmul16_activate(tiny.ctx);
    tsr_linear_forward(mapped.y, p.x, p.w, NULL, p.n, p.ic, p.oc);
    CU_ASSERT_EQUAL(tsr_matmul16_take_status(tiny.ctx), TSR_ERR_INTERNAL);
    CU_ASSERT_EQUAL(tsr_matmul16_take_status(tiny.ctx), TSR_OK); /* taken, cleared */
    context_free(&tiny);
    context_free(&big);
    context_free(&small);
    free(twice);
    free(sum);
    free(w_alias);
    free(copy);
    outputs_free(&on_the_fly);
    outputs_free(&mapped);
    outputs_free(&blocked);
    problem_free(&p);
}

/* fp16: an operand beyond 65504 becomes inf, and so does the output */
static void test_fp16_overflow_reaches_the_output(void)
{
    format = TSR_MATMUL16_FP16;
    engine = TSR_MATMUL16_SGEMM;
    problem p = problem_make(8, 16, 4, 41);
    context c = context_make(1 << 12);
    float *y = kc_alloc(p.n * p.oc);
    p.x[3] = 70000.0f; /* row 0 */
    tsr_matmul16_activate(c.ctx);
    tsr_linear_forward(y, p.x, p.w, NULL, p.n, p.ic, p.oc);
    CU_ASSERT_TRUE(!isfinite(y[0]) && isfinite(y[p.oc])); /* row 0 only */
    context_free(&c);
    free(y);
    problem_free(&p);
}

/* The token table is looked up as the products read weights: from its
 * 16-bit copy while a context that maps it is active (here a copy that
 * the refresh did not write, holding the rounding of other values, so the
 * result shows which was read), from the fp32 table otherwise. Tokens
 * outside the slice give zero rows either way. */
static void test_embedding_reads_the_mapped_copy(void)
{
    int64_t v = 7, c = 12, n = 5, start = 100;
    float *table = kc_alloc(v * c), *other = kc_alloc(v * c), *out = kc_alloc(n * c);
    for (int64_t i = 0; i < v * c; i++) {
        table[i] = 0.1f * (float)i;
        other[i] = -1.0f - 0.37f * (float)i;
    }
    size_t esize = tsr_matmul16_element_bytes(format);
    char *copy = calloc((size_t)(v * c), esize);
    context ctx = context_make(1 << 12);
    CU_ASSERT_EQUAL(tsr_matmul16_map(ctx.ctx, table, copy, (size_t)(v * c), false), TSR_OK);
    tsr_matmul16_round(ctx.ctx, copy, other, (size_t)(v * c));
    const int32_t tokens[5] = {103, 100, 99, 106, 107}; /* 99 and 107 lie outside */
    tsr_matmul16_activate(ctx.ctx);
    tsr_embedding_forward(out, tokens, table, n, c, start, v);
    size_t wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t row = tokens[i] - start;
        bool inside = row >= 0 && row < v;
        float widened[12];
        if (inside)
            tsr_matmul16_widen_copy(ctx.ctx, widened, copy + (size_t)(row * c) * esize, (size_t)c);
        for (int64_t j = 0; j < c; j++)
            wrong += out[i * c + j] != (inside ? widened[j] : 0.0f);
    }
    CU_ASSERT_EQUAL(wrong, 0u);
    CU_ASSERT_TRUE(fabsf(out[0] - other[3 * c]) < 0.05f * fabsf(other[3 * c])); /* other's row */
    tsr_matmul16_activate(NULL);
    tsr_embedding_forward(out, tokens, table, n, c, start, v);
    CU_ASSERT_EQUAL(memcmp(out, table + 3 * c, (size_t)c * sizeof(float)), 0);
    context_free(&ctx);
    free(copy);
    free(out);
    free(other);
    free(table);
}

/* each product test once per format and engine that can run here: bf16
 * on oneDNN (where it has a kernel for this CPU) and on sgemm, fp16 on
 * sgemm */
static void for_each_format(void (*test)(void))
{
    const struct {
        tsr_matmul16_format format;
        tsr_matmul16_engine engine;
    } runs[] = {{TSR_MATMUL16_BF16, TSR_MATMUL16_ONEDNN},
                {TSR_MATMUL16_BF16, TSR_MATMUL16_SGEMM},
                {TSR_MATMUL16_FP16, TSR_MATMUL16_SGEMM}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char why[256];
        const char *name = tsr_matmul16_format_name(runs[i].format);
        const char *on = runs[i].engine == TSR_MATMUL16_ONEDNN ? "oneDNN" : "sgemm";
        if (!tsr_matmul16_engine_runs(runs[i].format, runs[i].engine, why, sizeof why)) {
            printf("  %s on %s skipped: %s\n", name, on, why);
            continue;
        }
        format = runs[i].format;
        engine = runs[i].engine;
        test();
    }
}

/* bf16 takes oneDNN where it can, else sgemm; fp16 sgemm; an engine that
 * cannot run the format is refused with the reason */
static void test_engine_choice(void)
{
    char why[256];
    tsr_matmul16_engine bf16 = tsr_matmul16_engine_for(TSR_MATMUL16_BF16, why, sizeof why);
    CU_ASSERT_EQUAL(bf16 == TSR_MATMUL16_ONEDNN, why[0] == '\0');
    CU_ASSERT_EQUAL(tsr_matmul16_engine_for(TSR_MATMUL16_BF16, NULL, 0), bf16); /* remembered */
    printf("  bf16 runs on %s%s%s\n", bf16 == TSR_MATMUL16_ONEDNN ? "oneDNN" : "sgemm",
           why[0] ? ": " : "", why);
    CU_ASSERT_EQUAL(tsr_matmul16_engine_for(TSR_MATMUL16_FP16, NULL, 0), TSR_MATMUL16_SGEMM);
    CU_ASSERT_TRUE(tsr_matmul16_engine_runs(TSR_MATMUL16_BF16, TSR_MATMUL16_SGEMM, NULL, 0));
    CU_ASSERT_FALSE(tsr_matmul16_engine_runs(TSR_MATMUL16_FP16, TSR_MATMUL16_ONEDNN, NULL, 0));
    /* an sgemm operand is an fp32 value: twice oneDNN's workspace */
    CU_ASSERT_EQUAL(tsr_matmul16_workspace_bytes(TSR_MATMUL16_BF16, TSR_MATMUL16_SGEMM, 100),
                    800);
    CU_ASSERT_EQUAL(tsr_matmul16_workspace_bytes(TSR_MATMUL16_BF16, TSR_MATMUL16_ONEDNN, 100),
                    400);
    /* copies hold 16-bit patterns, for either engine and format */
    CU_ASSERT_EQUAL(tsr_matmul16_element_bytes(TSR_MATMUL16_BF16), 2);
    CU_ASSERT_EQUAL(tsr_matmul16_element_bytes(TSR_MATMUL16_FP16), 2);
    float workspace[64];
    tsr_matmul16 *ctx = NULL;
    CU_ASSERT_EQUAL(tsr_matmul16_create(TSR_MATMUL16_FP16, TSR_MATMUL16_ONEDNN, workspace, 8,
                                        &ctx),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "cannot run here"));
}

static void test_products_each_format(void)
{
    for_each_format(test_products_against_rounded_reference);
}

static void test_copies_and_blocking_each_format(void)
{
    for_each_format(test_mapped_copy_and_blocking);
}

static void test_embedding_each_format(void)
{
    for_each_format(test_embedding_reads_the_mapped_copy);
}

static const tsr_test_case matmul16_cases[] = {
    TSR_TEST(test_bf16_rounding_rule),
    TSR_TEST(test_bf16_array_path_equals_rule),
    TSR_TEST(test_fp16_rounding_rule),
    TSR_TEST(test_fp16_array_path_equals_rule),
    TSR_TEST(test_engine_choice),
    TSR_TEST(test_products_each_format),
    TSR_TEST(test_copies_and_blocking_each_format),
    TSR_TEST(test_fp16_overflow_reaches_the_output),
    TSR_TEST(test_embedding_each_format),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("kernels_matmul16", matmul16_cases)};
    return tsr_test_main(suites, 1);
}
