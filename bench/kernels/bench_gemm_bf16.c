/*
 * bench_gemm_bf16.c - the two bf16 GEMM libraries Debian offers, on the
 * GEMMs of a GPT-2-124M training step (B 4, T 256: 1024 rows), beside
 * fp32 sgemm measured in the same run:
 *   OpenBLAS cblas_sbgemm (bf16 in, fp32 out), looked up at run time:
 *   Debian 12's OpenBLAS 0.3.21 declares it in cblas.h but is built
 *   without BUILD_BFLOAT16 and exports no such symbol (the row says so)
 *   oneDNN 2.6 matmul, bf16 source and weights, fp32 destination, the
 *   primitive created once before timing (as a training step would)
 * Per shape: forward out = in W^T, input gradient dX = dY W, weight
 * gradient dW = dY^T X. Prints GFLOP/s of each and the ratio to fp32,
 * the implementation oneDNN picked (its ISA), and the worst relative
 * difference of each bf16 result from the fp32 one on the same (bf16
 * rounded) inputs. Not a test.
 *
 *   bench_gemm_bf16 [--threads N] [--seconds S]
 */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/timer.h"

typedef struct gemm_case {
    const char *name;
    int64_t m, k, n; /* C (m x n) = A (m x k) B (k x n), A and B as stored below */
    bool a_trans, b_trans;
} gemm_case;

static double seconds_since(uint64_t t0)
{
    return (double)(tsr_time_ns() - t0) * 1e-9;
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* oneDNN matmul C = op(A) op(B); a transposed operand is a strided view. */
typedef struct onednn_gemm {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    char impl[128]; /* the implementation oneDNN chose (its ISA) */
} onednn_gemm;

#define DNNL_OK(call)                                                                              \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "oneDNN: %s failed (%d)\n", #call, (int)s_);                           \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static bool onednn_create(onednn_gemm *g, const gemm_case *c, void *a, void *b, float *out)
{
    memset(g, 0, sizeof *g);
    DNNL_OK(dnnl_engine_create(&g->engine, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&g->stream, g->engine, dnnl_stream_default_flags));
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {c->m, c->k}, bd = {c->k, c->n}, cd = {c->m, c->n};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&amd, 2, ad, dnnl_bf16, c->a_trans ? dnnl_ba : dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_bf16, c->b_trans ? dnnl_ba : dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd));
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &desc, NULL, g->engine, NULL));
    const char *impl = NULL;
    DNNL_OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(g->impl, sizeof g->impl, "%s", impl);
    DNNL_OK(dnnl_primitive_create(&g->prim, pd));
    DNNL_OK(dnnl_memory_create(&g->a, &amd, g->engine, a));
    DNNL_OK(dnnl_memory_create(&g->b, &bmd, g->engine, b));
    DNNL_OK(dnnl_memory_create(&g->c, &cmd, g->engine, out));
    DNNL_OK(dnnl_primitive_desc_destroy(pd));
    return true;
}

static bool onednn_run(onednn_gemm *g)
{
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, g->a}, {DNNL_ARG_WEIGHTS, g->b}, {DNNL_ARG_DST, g->c}};
    DNNL_OK(dnnl_primitive_execute(g->prim, g->stream, 3, args));
    DNNL_OK(dnnl_stream_wait(g->stream));
    return true;
}

static void onednn_destroy(onednn_gemm *g)
{
    dnnl_memory_destroy(g->a);
    dnnl_memory_destroy(g->b);
    dnnl_memory_destroy(g->c);
    dnnl_primitive_destroy(g->prim);
    dnnl_stream_destroy(g->stream);
    dnnl_engine_destroy(g->engine);
}

enum { FP32 = 0, SBGEMM, ONEDNN, KINDS };

typedef void (*sbgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                          blasint, blasint, float, const bfloat16 *, blasint, const bfloat16 *,
                          blasint, float, float *, blasint);
static sbgemm_fn sbgemm;

/* Runs one kind once. */
static void run(int kind, const gemm_case *c, const float *af, const float *bf, const uint16_t *ah,
                const uint16_t *bh, float *out, onednn_gemm *g)
{
    int lda = (int)(c->a_trans ? c->m : c->k), ldb = (int)(c->b_trans ? c->k : c->n);
    enum CBLAS_TRANSPOSE ta = c->a_trans ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = c->b_trans ? CblasTrans : CblasNoTrans;
    if (kind == FP32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)c->m, (int)c->n, (int)c->k, 1.0f, af, lda, bf, ldb,
                    0.0f, out, (int)c->n);
    else if (kind == SBGEMM)
        sbgemm(CblasRowMajor, ta, tb, (int)c->m, (int)c->n, (int)c->k, 1.0f, ah, lda, bh, ldb, 0.0f,
               out, (int)c->n);
    else
        onednn_run(g);
}

static double rate(int kind, const gemm_case *c, const float *af, const float *bf,
                   const uint16_t *ah, const uint16_t *bh, float *out, onednn_gemm *g,
                   double budget)
{
    run(kind, c, af, bf, ah, bh, out, g); /* warm */
    int reps = 0;
    uint64_t t0 = tsr_time_ns();
    do {
        run(kind, c, af, bf, ah, bh, out, g);
        reps++;
    } while (seconds_since(t0) < budget);
    return 2.0 * (double)c->m * (double)c->k * (double)c->n * reps / seconds_since(t0);
}

static double worst_relative(const float *x, const float *ref, int64_t n)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0.0 ? sqrt(num / den) : 0.0;
}

int main(int argc, char **argv)
{
    int threads = 2;
    double budget = 0.3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            budget = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gemm_bf16 [--threads N] [--seconds S]\n");
            return 2;
        }
    }
    openblas_set_num_threads(threads);
    sbgemm = (sbgemm_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    if (sbgemm == NULL)
        printf("OpenBLAS %s exports no cblas_sbgemm (built without BUILD_BFLOAT16): its column "
               "is empty\n",
               openblas_get_config());
    omp_set_num_threads(threads); /* oneDNN's OpenMP pool */
    /* forward out(rows x n) = in(rows x k) W^T, W (n x k); dX = dY W; dW = dY^T X */
    const int64_t rows = 1024;
    static const int64_t linears[][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
    gemm_case cases[12];
    char names[12][48];
    int count = 0;
    for (int l = 0; l < 4; l++) {
        int64_t k = linears[l][0], n = linears[l][1];
        snprintf(names[count], sizeof names[0], "fwd %lldx%lld->%lld", (long long)rows,
                 (long long)k, (long long)n);
        cases[count] = (gemm_case){names[count], rows, k, n, false, true};
        count++;
        snprintf(names[count], sizeof names[0], "dX  %lldx%lld->%lld", (long long)rows,
                 (long long)n, (long long)k);
        cases[count] = (gemm_case){names[count], rows, n, k, false, false};
        count++;
        snprintf(names[count], sizeof names[0], "dW  %lldx%lld (%lld rows)", (long long)n,
                 (long long)k, (long long)rows);
        cases[count] = (gemm_case){names[count], n, rows, k, true, false};
        count++;
    }
    printf("bf16 GEMMs on the GPT-2-124M step's shapes (1024 rows), %d thread(s), GFLOP/s "
           "(ratio to fp32 sgemm in the same run; rel = relative L2 difference from fp32 on "
           "the same bf16-rounded inputs)\n",
           threads);
    printf("%-26s %9s %9s %6s %9s %9s %6s %9s  %s\n", "shape", "fp32", "sbgemm", "x", "rel",
           "oneDNN", "x", "rel", "oneDNN implementation");
    double sum[KINDS] = {0}, flops_total = 0.0;
    for (int i = 0; i < count; i++) {
        const gemm_case *c = &cases[i];
        int64_t an = c->m * c->k, bn = c->k * c->n, cn = c->m * c->n;
        float *af = malloc((size_t)an * sizeof *af), *bf = malloc((size_t)bn * sizeof *bf);
        uint16_t *ah = malloc((size_t)an * sizeof *ah), *bh = malloc((size_t)bn * sizeof *bh);
        float *ref = malloc((size_t)cn * sizeof *ref), *out = malloc((size_t)cn * sizeof *out);
        if (af == NULL || bf == NULL || ah == NULL || bh == NULL || ref == NULL || out == NULL)
            return 1;
        uint32_t seed = 12345u + (uint32_t)i;
        for (int64_t j = 0; j < an + bn; j++) {
            seed = seed * 1664525u + 1013904223u;
            float v = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
            uint16_t h = to_bf16(v);
            if (j < an) {
                ah[j] = h;
                af[j] = from_bf16(h);
            } else {
                bh[j - an] = h;
                bf[j - an] = from_bf16(h);
            }
        }
        onednn_gemm g;
        bool have_onednn = onednn_create(&g, c, ah, bh, out);
        double r[KINDS] = {0}, rel[KINDS] = {0};
        run(FP32, c, af, bf, ah, bh, ref, &g);
        for (int kind = 0; kind < KINDS; kind++) {
            if ((kind == ONEDNN && !have_onednn) || (kind == SBGEMM && sbgemm == NULL))
                continue;
            r[kind] = rate(kind, c, af, bf, ah, bh, out, &g, budget);
            run(kind, c, af, bf, ah, bh, out, &g);
            rel[kind] = worst_relative(out, ref, cn);
        }
        double flops = 2.0 * (double)c->m * (double)c->k * (double)c->n;
        for (int kind = 0; kind < KINDS; kind++)
            sum[kind] += r[kind] > 0.0 ? flops / r[kind] : 0.0; /* seconds per call */
        flops_total += flops;
        char col[KINDS][3][16];
        for (int kind = SBGEMM; kind < KINDS; kind++) {
            bool ran = r[kind] > 0.0;
            snprintf(col[kind][0], 16, ran ? "%.1f" : "-", r[kind] / 1e9);
            snprintf(col[kind][1], 16, ran ? "%.2f" : "-", r[kind] / r[FP32]);
            snprintf(col[kind][2], 16, ran ? "%.1e" : "-", rel[kind]);
        }
        printf("%-26s %9.1f %9s %6s %9s %9s %6s %9s  %s\n", c->name, r[FP32] / 1e9, col[SBGEMM][0],
               col[SBGEMM][1], col[SBGEMM][2], col[ONEDNN][0], col[ONEDNN][1], col[ONEDNN][2],
               have_onednn ? g.impl : "(none)");
        if (have_onednn)
            onednn_destroy(&g);
        free(af);
        free(bf);
        free(ah);
        free(bh);
        free(ref);
        free(out);
    }
    printf("the whole step's GEMMs: fp32 %.1f GFLOP/s", flops_total / sum[FP32] / 1e9);
    if (sum[SBGEMM] > 0)
        printf(", sbgemm %.1f (%.2fx)", flops_total / sum[SBGEMM] / 1e9, sum[FP32] / sum[SBGEMM]);
    if (sum[ONEDNN] > 0)
        printf(", oneDNN %.1f (%.2fx)", flops_total / sum[ONEDNN] / 1e9, sum[FP32] / sum[ONEDNN]);
    printf("\n");
    return 0;
}
