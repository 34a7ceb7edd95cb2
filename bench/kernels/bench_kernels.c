/*
 * bench_kernels.c - how fast the CPU kernels run against what the machine
 * can do: sgemm GFLOP/s (the peak MFU is measured against) for 1 and 2
 * threads on square and transformer-shaped products, then the linear and
 * attention kernels on the GPT-2-124M shape (micro batch 4, seq 256,
 * hidden 768, 12 heads of 64, vocab 50304) and the time of every other
 * kernel of a training step, composed into an estimate of one step.
 *
 * Usage: bench_kernels [--threads N ...] [--quick] [--cpu-time]
 * Each measurement repeats until it has run >= 0.3 s (1 run with --quick)
 * and reports the best repetition. --cpu-time measures the process's CPU
 * time instead of wall time: on a machine shared with other jobs it
 * excludes the time the process waited for a core, and it is meaningful
 * for --threads 1 only (with more threads, spinning counts as time).
 */
#include <time.h>

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/kernels.h"
#include "tessera/rng.h"
#include "tessera/timer.h"

static int g_quick = 0;
static int g_cpu_time = 0;

static double now_s(void)
{
    if (!g_cpu_time)
        return tsr_time_s();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_fill(int64_t n, uint64_t seed, float std)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (p == NULL) {
        fprintf(stderr, "bench_kernels: out of memory (%lld floats)\n", (long long)n);
        exit(1);
    }
    tsr_rng_fill_normal(p, n, tsr_rng_key(seed, "bench"), 0, 0.0f, std);
    return p;
}

typedef void (*bench_fn)(void *ctx);

/* best seconds of one call */
static double time_best(bench_fn fn, void *ctx)
{
    fn(ctx); /* warm up: page faults, thread pools */
    double best = 1e30, total = 0.0;
    int reps = 0;
    while (reps < 2 || (total < 0.3 && !g_quick) || reps < (g_quick ? 1 : 3)) {
        double t0 = now_s();
        fn(ctx);
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
        total += dt;
        reps++;
        if (g_quick && reps >= 2)
            break;
    }
    return best;
}

static void set_threads(int th)
{
    omp_set_num_threads(th);
    openblas_set_num_threads(th);
}

/* ---- sgemm ----------------------------------------------------------------- */

typedef struct gemm_ctx {
    int ta, tb;
    int m, n, k;
    float *a, *b, *c;
} gemm_ctx;

static void run_gemm(void *p)
{
    gemm_ctx *g = p;
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                g->m, g->n, g->k, 1.0f, g->a, g->ta ? g->m : g->k, g->b, g->tb ? g->k : g->n, 0.0f,
                g->c, g->n);
}

static double bench_gemm(const char *name, int ta, int tb, int m, int n, int k, int th)
{
    gemm_ctx g = {ta, tb, m, n, k, alloc_fill((int64_t)m * k, 1, 1), alloc_fill((int64_t)k * n, 2, 1),
                  alloc_fill((int64_t)m * n, 3, 1)};
    set_threads(th);
    double s = time_best(run_gemm, &g);
    double gf = 2.0 * m * n * k / s * 1e-9;
    printf("  %-34s %2d thr  %8.2f ms  %7.1f GFLOP/s\n", name, th, s * 1e3, gf);
    free(g.a), free(g.b), free(g.c);
    return gf;
}

/* sgemm right after an OpenMP region: libgomp's idle workers spin for a
 * while (OMP_WAIT_POLICY / GOMP_SPINCOUNT) and compete with OpenBLAS's
 * own threads for the cores. */
typedef struct after_omp_ctx {
    gemm_ctx g;
    float *buf;
    int64_t n;
} after_omp_ctx;

static void run_gemm_after_omp(void *p)
{
    after_omp_ctx *a = p;
    tsr_scale(a->buf, 1.0f, a->n);
    run_gemm(&a->g);
}

static void bench_gemm_after_omp(int th)
{
    int m = 1024, n = 2304, k = 768;
    after_omp_ctx a = {{0, 1, m, n, k, alloc_fill((int64_t)m * k, 1, 1),
                        alloc_fill((int64_t)k * n, 2, 1), alloc_fill((int64_t)m * n, 3, 1)},
                       alloc_fill(1 << 20, 4, 1), 1 << 20};
    set_threads(th);
    double s = time_best(run_gemm_after_omp, &a);
    printf("  %-34s %2d thr  %8.2f ms  %7.1f GFLOP/s  (OMP_WAIT_POLICY=%s)\n",
           "qkv fwd right after an omp region", th, s * 1e3, 2.0 * m * n * k / s * 1e-9,
           getenv("OMP_WAIT_POLICY") != NULL ? getenv("OMP_WAIT_POLICY") : "unset");
    free(a.g.a), free(a.g.b), free(a.g.c), free(a.buf);
}

/* ---- linear ---------------------------------------------------------------- */

typedef struct lin_ctx {
    int64_t n, ic, oc;
    float *inp, *w, *b, *out, *dinp, *dw, *db;
} lin_ctx;

static void run_lin_fwd(void *p)
{
    lin_ctx *l = p;
    tsr_linear_forward(l->out, l->inp, l->w, l->b, l->n, l->ic, l->oc);
}

static void run_lin_bwd(void *p)
{
    lin_ctx *l = p;
    tsr_linear_backward(l->dinp, l->dw, l->db, l->out, l->inp, l->w, l->n, l->ic, l->oc);
}

typedef struct step_times {
    double qkv_f, qkv_b, proj_f, proj_b, fc_f, fc_b, fc2_f, fc2_b, head_f, head_b;
    double attn_f, attn_b, ln_f, ln_b, gelu_f, gelu_b, add, ce, emb_f, emb_b, adamw, other;
} step_times;

static void bench_linear(const char *name, int64_t n, int64_t ic, int64_t oc, int bias, int th,
                         double *tf, double *tb)
{
    lin_ctx l = {n, ic, oc, alloc_fill(n * ic, 4, 1), alloc_fill(oc * ic, 5, 0.02f),
                 bias ? alloc_fill(oc, 6, 0.02f) : NULL, alloc_fill(n * oc, 7, 1),
                 alloc_fill(n * ic, 8, 1), alloc_fill(oc * ic, 9, 1), alloc_fill(oc, 10, 1)};
    set_threads(th);
    double f = time_best(run_lin_fwd, &l), b = time_best(run_lin_bwd, &l);
    double flops = 2.0 * n * ic * oc;
    printf("  %-18s (%5lld x %5lld)  %2d thr  fwd %8.2f ms %7.1f GFLOP/s   bwd %8.2f ms %7.1f GFLOP/s\n",
           name, (long long)ic, (long long)oc, th, f * 1e3, flops / f * 1e-9, b * 1e3,
           2 * flops / b * 1e-9);
    *tf = f, *tb = b;
    free(l.inp), free(l.w), free(l.b), free(l.out), free(l.dinp), free(l.dw), free(l.db);
}

/* ---- attention ------------------------------------------------------------- */

typedef struct attn_ctx {
    int64_t b, t, h, d;
    float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv, *scratch;
} attn_ctx;

static void run_attn_fwd(void *p)
{
    attn_ctx *a = p;
    tsr_attention_forward(a->out, a->lse, a->q, a->k, a->v, a->b, a->t, a->h, a->h, a->d, NULL, NULL,
                          a->scratch);
}

static void run_attn_bwd(void *p)
{
    attn_ctx *a = p;
    tsr_attention_backward(a->dq, a->dk, a->dv, a->dout, a->q, a->k, a->v, a->out, a->lse, a->b,
                           a->t, a->h, a->h, a->d, NULL, NULL, a->scratch);
}

static void bench_attention(int64_t b, int64_t t, int64_t h, int64_t d, int th, double *tf,
                            double *tb)
{
    int64_t n = b * t * h * d;
    set_threads(th);
    attn_ctx a = {b, t, h, d, alloc_fill(n, 11, 1), alloc_fill(n, 12, 1), alloc_fill(n, 13, 1),
                  alloc_fill(n, 14, 1), alloc_fill(b * h * t, 15, 1), alloc_fill(n, 16, 1),
                  alloc_fill(n, 17, 1), alloc_fill(n, 18, 1), alloc_fill(n, 19, 1),
                  alloc_fill((int64_t)tsr_attention_scratch_floats(t, d), 20, 1)};
    run_attn_fwd(&a);
    double f = time_best(run_attn_fwd, &a), bw = time_best(run_attn_bwd, &a);
    /* FLOPs the causal kernel needs (the t(t+1)/2 unmasked scores) and
     * the Megatron convention (full t x t, as MFU formulas count) */
    double causal = (double)b * h * d * (double)t * (double)(t + 1) / 2.0;
    double fwd_need = 4.0 * causal, bwd_need = 10.0 * causal;
    double fwd_full = 4.0 * b * h * d * (double)t * t, bwd_full = 2 * fwd_full;
    printf("  attention fwd  B%lld T%lld H%lld D%lld  %2d thr  %8.2f ms  %7.1f GFLOP/s causal  "
           "%7.1f GFLOP/s as counted (full T^2)\n",
           (long long)b, (long long)t, (long long)h, (long long)d, th, f * 1e3,
           fwd_need / f * 1e-9, fwd_full / f * 1e-9);
    printf("  attention bwd  B%lld T%lld H%lld D%lld  %2d thr  %8.2f ms  %7.1f GFLOP/s causal  "
           "%7.1f GFLOP/s as counted (full T^2)\n",
           (long long)b, (long long)t, (long long)h, (long long)d, th, bw * 1e3,
           bwd_need / bw * 1e-9, bwd_full / bw * 1e-9);
    *tf = f, *tb = bw;
    free(a.q), free(a.k), free(a.v), free(a.out), free(a.lse), free(a.dout), free(a.dq);
    free(a.dk), free(a.dv), free(a.scratch);
}

/* ---- the other kernels of a step -------------------------------------------- */

typedef struct misc_ctx {
    int64_t n, c, v;
    float *x, *y, *w, *bias, *mean, *rstd, *dx, *dw, *db, *big, *logits, *mx, *se, *tl, *loss,
        *dloss, *m, *vv, *table;
    int32_t *tokens;
    int64_t nparams;
} misc_ctx;

static void run_ln_fwd(void *p)
{
    misc_ctx *m = p;
    tsr_layernorm_forward(m->y, m->mean, m->rstd, m->x, m->w, m->bias, m->n, m->c, 1e-5f);
}
static void run_ln_bwd(void *p)
{
    misc_ctx *m = p;
    tsr_layernorm_backward(m->dx, m->dw, m->db, m->y, m->x, m->w, m->mean, m->rstd, m->n, m->c);
}
static void run_gelu_fwd(void *p)
{
    misc_ctx *m = p;
    tsr_gelu_forward(m->big + m->n * 4 * m->c, m->big, m->n * 4 * m->c);
}
static void run_gelu_bwd(void *p)
{
    misc_ctx *m = p;
    tsr_gelu_backward(m->big + 2 * m->n * 4 * m->c, m->big + m->n * 4 * m->c, m->big,
                      m->n * 4 * m->c);
}
static void run_add(void *p)
{
    misc_ctx *m = p;
    tsr_add_forward(m->y, m->x, m->dx, m->n * m->c);
}
static void run_ce(void *p)
{
    misc_ctx *m = p;
    tsr_ce_row_max(m->mx, m->logits, m->n, m->v);
    tsr_ce_sumexp_target(m->se, m->tl, m->logits, m->mx, m->tokens, m->n, m->v, 0);
    tsr_ce_loss(m->loss, m->se, m->mx, m->tl, m->n);
    tsr_ce_logits_to_grad(m->logits, m->mx, m->se, m->tokens, m->dloss, m->n, m->v, 0);
}
static void run_emb_fwd(void *p)
{
    misc_ctx *m = p;
    tsr_embedding_forward(m->y, m->tokens, m->table, m->n, m->c, 0, m->v);
}
static void run_emb_bwd(void *p)
{
    misc_ctx *m = p;
    tsr_embedding_backward(m->table, m->x, m->tokens, m->n, m->c, 0, m->v);
}
static void run_adamw(void *p)
{
    misc_ctx *m = p;
    tsr_adamw_update(m->big, m->big + m->nparams, m->m, m->vv, m->nparams, 1e-4f, 0.9f, 0.95f,
                     1e-8f, 0.1f, 10, 1.0f);
}

static void bench_misc(int64_t n, int64_t c, int64_t v, int th, step_times *st)
{
    set_threads(th);
    misc_ctx m = {0};
    m.n = n, m.c = c, m.v = v;
    m.nparams = 124000000;
    m.x = alloc_fill(n * c, 21, 1), m.y = alloc_fill(n * c, 22, 1), m.w = alloc_fill(c, 23, 1);
    m.bias = alloc_fill(c, 24, 1), m.mean = alloc_fill(n, 25, 1), m.rstd = alloc_fill(n, 26, 1);
    m.dx = alloc_fill(n * c, 27, 1), m.dw = alloc_fill(c, 28, 1), m.db = alloc_fill(c, 29, 1);
    int64_t nbig = 2 * m.nparams > 3 * n * 4 * c ? 2 * m.nparams : 3 * n * 4 * c;
    m.big = alloc_fill(nbig, 30, 1);
    m.logits = alloc_fill(n * v, 31, 2);
    m.mx = alloc_fill(n, 32, 1), m.se = alloc_fill(n, 33, 1), m.tl = alloc_fill(n, 34, 1);
    m.loss = alloc_fill(n, 35, 1), m.dloss = alloc_fill(n, 36, 1);
    m.m = alloc_fill(m.nparams, 37, 1), m.vv = alloc_fill(m.nparams, 38, 1);
    for (int64_t i = 0; i < m.nparams; i++)
        m.vv[i] = m.vv[i] * m.vv[i];
    m.table = alloc_fill(v * c, 39, 1);
    m.tokens = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++)
        m.tokens[i] = (int32_t)((i * 7919) % v);
    run_ln_fwd(&m);
    struct {
        const char *name;
        bench_fn fn;
        double *slot;
    } rows[] = {
        {"layernorm fwd", run_ln_fwd, &st->ln_f},  {"layernorm bwd", run_ln_bwd, &st->ln_b},
        {"gelu fwd (N x 4C)", run_gelu_fwd, &st->gelu_f},
        {"gelu bwd (N x 4C)", run_gelu_bwd, &st->gelu_b},
        {"residual add", run_add, &st->add},       {"cross-entropy 4 steps", run_ce, &st->ce},
        {"embedding fwd", run_emb_fwd, &st->emb_f}, {"embedding bwd", run_emb_bwd, &st->emb_b},
        {"adamw (124M params)", run_adamw, &st->adamw},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        /* the cross-entropy overwrites its logits: refill between runs is
         * not needed for timing (gradients are finite) */
        double s = time_best(rows[i].fn, &m);
        *rows[i].slot = s;
        printf("  %-28s %2d thr  %8.3f ms\n", rows[i].name, th, s * 1e3);
    }
    free(m.x), free(m.y), free(m.w), free(m.bias), free(m.mean), free(m.rstd), free(m.dx);
    free(m.dw), free(m.db), free(m.big), free(m.logits), free(m.mx), free(m.se), free(m.tl);
    free(m.loss), free(m.dloss), free(m.m), free(m.vv), free(m.table), free(m.tokens);
}

int main(int argc, char **argv)
{
    int threads[4] = {1, 2}, nthreads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            g_quick = 1;
        else if (strcmp(argv[i], "--cpu-time") == 0)
            g_cpu_time = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && nthreads < 4)
            threads[nthreads++] = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_kernels [--threads N ...] [--quick] [--cpu-time]\n");
            return 2;
        }
    }
    if (nthreads == 0)
        nthreads = 2;
    const int64_t B = 4, T = 256, C = 768, H = 12, D = 64, V = 50304, L = 12, N = B * T;
    printf("bench_kernels: OpenBLAS %s (core %s); %s time\n", openblas_get_config(),
           openblas_get_corename(), g_cpu_time ? "process CPU" : "wall");
    printf("\n== sgemm peak (C = A B, fp32, OpenBLAS)\n");
    double peak[4] = {0};
    for (int ti = 0; ti < nthreads; ti++) {
        int th = threads[ti];
        double g[5];
        g[0] = bench_gemm("square 2048 NN", 0, 0, 2048, 2048, 2048, th);
        g[1] = bench_gemm("qkv fwd 1024x2304x768 NT", 0, 1, 1024, 2304, 768, th);
        g[2] = bench_gemm("fc fwd 1024x3072x768 NT", 0, 1, 1024, 3072, 768, th);
        g[3] = bench_gemm("fc dW 3072x768x1024 TN", 1, 0, 3072, 768, 1024, th);
        g[4] = bench_gemm("fc2 dX 1024x3072x768 NN", 0, 0, 1024, 3072, 768, th);
        for (int i = 0; i < 5; i++)
            peak[ti] = g[i] > peak[ti] ? g[i] : peak[ti];
        if (th > 1)
            bench_gemm_after_omp(th);
        printf("  -> peak %d thread(s): %.1f GFLOP/s (best of the shapes above)\n", th,
               peak[ti]);
    }
    for (int ti = 0; ti < nthreads; ti++) {
        int th = threads[ti];
        step_times st = {0};
        printf("\n== GPT-2-124M shape, %d thread(s): B=%lld T=%lld C=%lld H=%lld V=%lld\n", th,
               (long long)B, (long long)T, (long long)C, (long long)H, (long long)V);
        bench_linear("qkv", N, C, 3 * C, 1, th, &st.qkv_f, &st.qkv_b);
        bench_linear("attn proj", N, C, C, 1, th, &st.proj_f, &st.proj_b);
        bench_linear("mlp fc", N, C, 4 * C, 1, th, &st.fc_f, &st.fc_b);
        bench_linear("mlp proj", N, 4 * C, C, 1, th, &st.fc2_f, &st.fc2_b);
        bench_linear("lm head (tied)", N, C, V, 0, th, &st.head_f, &st.head_b);
        bench_attention(B, T, H, D, th, &st.attn_f, &st.attn_b);
        bench_misc(N, C, V, th, &st);
        /* one step composed from the kernels: per layer 2 layernorms, 4
         * linears, attention, gelu, 2 residual adds, forward and backward
         * (the backward of a residual add is an accumulate, about an add) */
        double layer = st.qkv_f + st.qkv_b + st.proj_f + st.proj_b + st.fc_f + st.fc_b +
                       st.fc2_f + st.fc2_b + st.attn_f + st.attn_b + 2 * (st.ln_f + st.ln_b) +
                       st.gelu_f + st.gelu_b + 4 * st.add;
        double step = L * layer + st.head_f + st.head_b + st.ce + st.ln_f + st.ln_b +
                      st.emb_f + st.emb_b + st.adamw;
        /* Megatron's FLOPs per step without recomputation (3x forward):
         * 72 B T L C^2 (1 + T/(6C) + V/(12 L C)) */
        double flops = 72.0 * B * T * L * C * C * (1.0 + T / (6.0 * C) + V / (12.0 * L * C));
        printf("  composed step (kernels only, no framework): %.1f ms  -> %.1f GFLOP/s "
               "(Megatron formula), %.1f%% of the %d-thread sgemm peak\n",
               step * 1e3, flops / step * 1e-9, 100.0 * flops / step * 1e-9 / peak[ti], th);
        printf("    of which linears %.1f ms, attention %.1f ms, lm head %.1f ms, other %.1f ms\n",
               L * (st.qkv_f + st.qkv_b + st.proj_f + st.proj_b + st.fc_f + st.fc_b + st.fc2_f +
                    st.fc2_b) * 1e3,
               L * (st.attn_f + st.attn_b) * 1e3, (st.head_f + st.head_b) * 1e3,
               (step - L * (st.qkv_f + st.qkv_b + st.proj_f + st.proj_b + st.fc_f + st.fc_b +
                            st.fc2_f + st.fc2_b + st.attn_f + st.attn_b) -
                st.head_f - st.head_b) *
                   1e3);
    }
    return 0;
}
