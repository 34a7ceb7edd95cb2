/*
 * bench_attention_patterns.c - how the time of the attention kernels
 * follows the work the mask leaves them: forward and forward+backward of
 * tsr_attention_forward / tsr_attention_backward under each attention
 * pattern (sliding windows, Child et al.'s fixed and strided block-sparse
 * patterns), against causal attention measured in the same run.
 *
 * Shape: the attention of a tiny model at a long sequence, B = 1,
 * T = 4096, 4 query heads and 4 key/value heads of 64 (--seq, --heads,
 * --kv-heads, --head-dim change it). For every pattern it prints the
 * score elements of the 64x64 tiles the kernels compute
 * (tsr_attention_computed_elements: the skipped tiles' are not counted,
 * the computed tiles' are counted whole) and the elements the mask
 * actually shows a query (counted here from the rules of kernels.h), then
 * the times, the speed-up causal/pattern and the time fraction
 * pattern/causal beside the computed-elements fraction: when the kernels
 * spend their time on the products of the tiles they compute, the two
 * fractions agree. It ends with a verdict on two claims: a window of 256
 * at T = 4096 runs forward+backward >= 8x faster than causal, and the
 * block-sparse patterns cost in proportion to their computed elements
 * (time fraction / elements fraction within 0.75 .. 1.33).
 *
 * Usage: bench_attention_patterns [--seq T] [--heads H] [--kv-heads HKV]
 *        [--head-dim D] [--threads N ...] [--quick] [--cpu-time]
 * Each measurement repeats until it has run >= 0.3 s (and at least 3
 * times; 1 timed run after the warm-up with --quick) and reports the best
 * repetition. Causal is timed first and again last; the baseline is the
 * better of the two, and both are printed so that drift (another process
 * taking a core) shows. --cpu-time measures process CPU time instead of
 * wall time (meaningful for --threads 1 only). Not a test: it checks
 * nothing and always exits 0 once it has run.
 */
#include <time.h>

#include <math.h>
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
        fprintf(stderr, "bench_attention_patterns: out of memory (%lld floats)\n",
                (long long)n);
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
        if (g_quick && reps >= 1)
            break;
    }
    return best;
}

/* ---- the patterns ------------------------------------------------------------ */

typedef struct pattern {
    const char *name;
    tsr_attn_mask mask;
    int block_sparse; /* judged for proportionality */
} pattern;

#define WINDOW(w) {TSR_ATTN_WINDOW, (w), 0, 0, NULL, NULL, NULL}
#define SPARSE(p, b, s) {(p), 0, (b), (s), NULL, NULL, NULL}

static const pattern patterns[] = {
    {"causal", {TSR_ATTN_CAUSAL, 0, 0, 0, NULL, NULL, NULL}, 0},
    {"window 256", WINDOW(256), 0},
    {"window 512", WINDOW(512), 0},
    {"window 1024", WINDOW(1024), 0},
    {"fixed b64 s256", SPARSE(TSR_ATTN_FIXED, 64, 256), 1},
    {"fixed b128 s512", SPARSE(TSR_ATTN_FIXED, 128, 512), 1},
    {"strided b64 s256", SPARSE(TSR_ATTN_STRIDED, 64, 256), 1},
    {"strided b128 s1024", SPARSE(TSR_ATTN_STRIDED, 128, 1024), 1},
    {"fixed b32 s256 (per-element)", SPARSE(TSR_ATTN_FIXED, 32, 256), 1},
};
#define NPAT ((int)(sizeof patterns / sizeof patterns[0]))

/* Pairs (i, j) the mask shows a query, straight from the rules in
 * kernels.h (no documents, no prefix): what an ideal kernel would compute. */
static double visible_elements(const tsr_attn_mask *m, int64_t t)
{
    double n = 0.0;
    for (int64_t i = 0; i < t; i++) {
        if (m->pattern == TSR_ATTN_CAUSAL) {
            n += (double)(i + 1);
        } else if (m->pattern == TSR_ATTN_WINDOW) {
            n += (double)(i + 1 < m->window ? i + 1 : m->window);
        } else {
            int64_t l = m->stride / m->block, bi = i / m->block;
            for (int64_t j = 0; j <= i; j++) {
                int64_t bj = j / m->block;
                int on = m->pattern == TSR_ATTN_FIXED ? (bi / l == bj / l || bj % l == l - 1)
                                                      : (bi - bj < l || (bi - bj) % l == 0);
                n += on;
            }
        }
    }
    return n;
}

/* ---- the kernels ------------------------------------------------------------- */

typedef struct attn_ctx {
    int64_t b, t, hq, hkv, d;
    const tsr_attn_mask *mask;
    float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv, *scratch;
} attn_ctx;

static void run_fwd(void *p)
{
    attn_ctx *a = p;
    tsr_attention_forward(a->out, a->lse, a->q, a->k, a->v, a->b, a->t, a->hq, a->hkv, a->d,
                          a->mask, NULL, a->scratch);
}

static void run_fwd_bwd(void *p)
{
    attn_ctx *a = p;
    run_fwd(a);
    /* the backward accumulates into nothing: it overwrites dq, dk, dv */
    tsr_attention_backward(a->dq, a->dk, a->dv, a->dout, a->q, a->k, a->v, a->out, a->lse, a->b,
                           a->t, a->hq, a->hkv, a->d, a->mask, NULL, a->scratch);
}

typedef struct result {
    double computed, visible, fwd, fb;
    int ok;
} result;

static void measure(attn_ctx *a, const pattern *pt, result *r)
{
    memset(r, 0, sizeof *r);
    if (tsr_attention_mask_check(&pt->mask, a->t) != TSR_OK) {
        printf("  %-30s skipped: %s\n", pt->name, tsr_last_error());
        return;
    }
    a->mask = &pt->mask;
    r->computed = tsr_attention_computed_elements(&pt->mask, a->t);
    r->visible = visible_elements(&pt->mask, a->t);
    r->fwd = time_best(run_fwd, a);
    r->fb = time_best(run_fwd_bwd, a);
    r->ok = 1;
}

static void print_row(const char *name, const result *r, const result *c, double cf, double cfb)
{
    double ef = r->computed / c->computed;
    printf("  %-30s %9.0f el %5.3f (seen %5.3f)  fwd %8.2f ms  fwd+bwd %8.2f ms  "
           "speed-up fwd %5.2fx fwd+bwd %5.2fx  time %5.3f of causal, elements %5.3f of causal\n",
           name, r->computed, ef, r->visible / c->visible, r->fwd * 1e3, r->fb * 1e3, cf / r->fwd,
           cfb / r->fb, r->fb / cfb, ef);
}

static void bench_threads(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d, int th)
{
    omp_set_num_threads(th);
    int64_t nq = b * t * hq * d, nk = b * t * hkv * d;
    /* q, k, v of std 1 give the softmax a realistic spread at D = 64 */
    attn_ctx a = {b,
                  t,
                  hq,
                  hkv,
                  d,
                  NULL,
                  alloc_fill(nq, 11, 1),
                  alloc_fill(nk, 12, 1),
                  alloc_fill(nk, 13, 1),
                  alloc_fill(nq, 14, 1),
                  alloc_fill(b * hq * t, 15, 1),
                  alloc_fill(nq, 16, 1),
                  alloc_fill(nq, 17, 1),
                  alloc_fill(nk, 18, 1),
                  alloc_fill(nk, 19, 1),
                  /* sized under the thread count the kernels run with */
                  alloc_fill((int64_t)tsr_attention_scratch_floats(t, d), 20, 1)};
    printf("\n== B=%lld T=%lld Hq=%lld Hkv=%lld D=%lld, %d thread(s), %s time\n", (long long)b,
           (long long)t, (long long)hq, (long long)hkv, (long long)d, th,
           g_cpu_time ? "process CPU" : "wall");
    printf("  computed: score elements of the 64x64 tiles the kernels compute, per head "
           "(tsr_attention_computed_elements), and their fraction of causal's;\n"
           "  seen: fraction of causal's (i, j) pairs that the mask shows; times: best "
           "repetition; fwd+bwd time fraction beside the computed fraction\n");
    result res[NPAT];
    result causal_first;
    measure(&a, &patterns[0], &causal_first);
    for (int p = 1; p < NPAT; p++)
        measure(&a, &patterns[p], &res[p]);
    result causal_last;
    measure(&a, &patterns[0], &causal_last);
    res[0] = causal_first;
    res[0].fwd = fmin(causal_first.fwd, causal_last.fwd);
    res[0].fb = fmin(causal_first.fb, causal_last.fb);
    double cf = res[0].fwd, cfb = res[0].fb;
    const result *c = &res[0];
    print_row("causal (baseline, best of 2)", &res[0], c, cf, cfb);
    for (int p = 1; p < NPAT; p++)
        if (res[p].ok)
            print_row(patterns[p].name, &res[p], c, cf, cfb);
    printf("  causal timed first: fwd %.2f ms fwd+bwd %.2f ms; timed last: fwd %.2f ms "
           "fwd+bwd %.2f ms (drift %+.1f%%)\n",
           causal_first.fwd * 1e3, causal_first.fb * 1e3, causal_last.fwd * 1e3,
           causal_last.fb * 1e3, 100.0 * (causal_last.fb / causal_first.fb - 1.0));
    double drift = causal_last.fb / causal_first.fb;
    if (drift > 1.1 || drift < 1.0 / 1.1)
        printf("  WARNING: causal fwd+bwd changed by more than 10%% between the first and the "
               "last timing: something else took a core meanwhile, and the ratios above are "
               "not reliable; run again\n");
    printf("  causal: %.1f GFLOP/s fwd, %.1f GFLOP/s fwd+bwd on the computed tiles "
           "(4 and 14 FLOPs per element per head dim)\n",
           4.0 * c->computed * d * b * hq / cf * 1e-9, 14.0 * c->computed * d * b * hq / cfb * 1e-9);

    printf("  verdict (%d thread(s)):\n", th);
    if (res[1].ok)
        printf("    window 256 fwd+bwd speed-up vs causal: %.2f (target >= 8): %s; the ratio "
               "of computed tiles (counted whole) is %.2f, of seen elements %.2f (the "
               "hull-bounded products land between)\n",
               cfb / res[1].fb, cfb / res[1].fb >= 8.0 ? "met" : "NOT met",
               c->computed / res[1].computed, c->visible / res[1].visible);
    for (int p = 1; p < NPAT; p++) {
        if (!res[p].ok || !patterns[p].block_sparse)
            continue;
        double ef = res[p].computed / c->computed;
        double rf = (res[p].fwd / cf) / ef, rfb = (res[p].fb / cfb) / ef;
        printf("    %-30s time/elements fwd+bwd %5.2f (fwd %5.2f): %s\n", patterns[p].name, rfb,
               rf,
               rfb >= 0.75 && rfb <= 1.33 ? "proportional"
                                          : (rfb > 1.33 ? "NOT proportional (slower than its "
                                                          "elements)"
                                                        : "NOT proportional (faster than its "
                                                          "elements)"));
    }
    free(a.q), free(a.k), free(a.v), free(a.out), free(a.lse), free(a.dout), free(a.dq);
    free(a.dk), free(a.dv), free(a.scratch);
}

static int64_t arg_int(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    return end != s && *end == '\0' ? (int64_t)v : -1;
}

int main(int argc, char **argv)
{
    int64_t t = 4096, hq = 4, hkv = -1, d = 64;
    int threads[4], nthreads = 0;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (strcmp(argv[i], "--quick") == 0)
            g_quick = 1;
        else if (strcmp(argv[i], "--cpu-time") == 0)
            g_cpu_time = 1;
        else if (strcmp(argv[i], "--threads") == 0 && more && nthreads < 4)
            threads[nthreads++] = (int)arg_int(argv[++i]);
        else if (strcmp(argv[i], "--seq") == 0 && more)
            t = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--heads") == 0 && more)
            hq = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--kv-heads") == 0 && more)
            hkv = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--head-dim") == 0 && more)
            d = arg_int(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_attention_patterns [--seq T] [--heads H] "
                            "[--kv-heads HKV] [--head-dim D] [--threads N ...] [--quick] "
                            "[--cpu-time]\n");
            return 2;
        }
    }
    if (hkv < 0)
        hkv = hq;
    if (nthreads == 0)
        threads[nthreads++] = omp_get_max_threads();
    int bad = t < 1 || hq < 1 || hkv < 1 || d < 1 || hq % hkv != 0;
    for (int i = 0; i < nthreads; i++)
        bad |= threads[i] < 1;
    if (bad) {
        fprintf(stderr, "bench_attention_patterns: --seq, --heads, --kv-heads, --head-dim and "
                        "--threads must be positive, --heads a multiple of --kv-heads\n");
        return 2;
    }
    printf("bench_attention_patterns: tiled attention under each mask pattern against causal "
           "(not a test)\n");
    for (int i = 0; i < nthreads; i++)
        bench_threads(1, t, hq, hkv, d, threads[i]);
    return 0;
}
