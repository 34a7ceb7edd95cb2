/*
 * bench_generate.c - what a generated token costs.
 *
 * One model (8 layers, hidden 512, 8 heads, vocabulary 8192, learned
 * positions: a small GPT-2), batch 1, 2048 positions. With the cache: the
 * sequence is stepped one token at a time (tsr_net_decode_step) from
 * position 0, and the time of the steps around positions 64, 256, 1024
 * and 2047 is reported. Without it (the baseline, measured here): each
 * token needs a forward over its whole prefix, timed for a model built
 * for that many positions. The ratio is what the cache saves at each
 * length; the cached step's cost is the GEMMs of one row (constant) plus
 * attention over the positions so far (linear, small), where the
 * recomputed token's grows with the prefix.
 *
 *   OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 build/bench/generate/bench_generate
 *
 * (the thread settings `tessera` itself starts with, launcher/main.c:
 * without them OpenMP's and OpenBLAS's idle threads spin against each
 * other on a batch of one row). Measured here, 2 cores: the cached step
 * 6.6 ms at position 64 and 9.5 ms at 2047, the whole prefix 25.7 ms and
 * 693 ms: 3.9x and 73x.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "gpt_spec.h"
#include "sharding/net.h"
#include "tessera/timer.h"

enum { LAYERS = 8, HIDDEN = 512, HEADS = 8, VOCAB = 8192, CONTEXT = 2048 };

typedef struct bench_net {
    tsr_spec_arena *arena;
    tsr_model_spec spec;
    tsr_net *net;
    tsr_memory_plan plan;
} bench_net;

static int build(int64_t seq, bench_net *b)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = LAYERS;
    cfg.hidden_size = HIDDEN;
    cfg.num_attention_heads = HEADS;
    cfg.seq_length = (int)seq;
    cfg.max_position_embeddings = CONTEXT;
    cfg.micro_batch_size = 1;
    memset(b, 0, sizeof *b);
    tsr_net_dims dims = tsr_net_dims_from_config(&cfg, VOCAB, 0);
    if (tsr_spec_arena_create(&b->arena) != TSR_OK ||
        tsr_gpt_build_spec(&cfg, b->arena, &b->spec) != TSR_OK ||
        tsr_net_build(&b->spec, &cfg, &dims, &b->net) != TSR_OK)
        return -1;
    tsr_net_plan(b->net, &b->plan);
    if (tsr_plan_allocate(&b->plan) != TSR_OK || tsr_net_carve(b->net, NULL, &b->plan) != TSR_OK)
        return -1;
    return 0;
}

static void release(bench_net *b)
{
    tsr_plan_release(&b->plan);
    tsr_net_destroy(b->net);
    tsr_spec_arena_destroy(b->arena);
}

int main(void)
{
    static const int64_t at[] = {64, 256, 1024, CONTEXT - 1};
    enum { POINTS = sizeof at / sizeof at[0], WINDOW = 16 };
    bench_net cached;
    if (build(CONTEXT, &cached) != 0) {
        fprintf(stderr, "bench_generate: %s\n", tsr_last_error());
        return 1;
    }
    float *logits = malloc((size_t)CONTEXT * VOCAB * sizeof *logits);
    int32_t *tokens = malloc((size_t)CONTEXT * sizeof *tokens);
    for (int64_t i = 0; i < CONTEXT; i++)
        tokens[i] = (int32_t)((i * 7919) % VOCAB);
    double step_ms[POINTS] = {0};
    int64_t count = 0;
    for (int64_t p = 0; p < CONTEXT; p++) {
        uint64_t t0 = tsr_time_ns();
        if (tsr_net_decode_step(cached.net, &tokens[p], p, logits, &count) != TSR_OK) {
            fprintf(stderr, "bench_generate: %s\n", tsr_last_error());
            return 1;
        }
        double ms = (double)(tsr_time_ns() - t0) * 1e-6;
        for (int k = 0; k < POINTS; k++)
            if (p > at[k] - WINDOW && p <= at[k])
                step_ms[k] += ms / WINDOW;
    }
    release(&cached);
    printf("bench_generate: %d layers, hidden %d, %d heads, vocabulary %d, batch 1\n", LAYERS,
           HIDDEN, HEADS, VOCAB);
    printf("%10s %22s %26s %8s\n", "position", "cached step (ms/token)",
           "whole prefix (ms/token)", "ratio");
    for (int k = 0; k < POINTS; k++) {
        bench_net full;
        int64_t seq = at[k] + 1;
        if (build(seq, &full) != 0) {
            fprintf(stderr, "bench_generate: %s\n", tsr_last_error());
            return 1;
        }
        tsr_net_logits(full.net, tokens, logits, &count); /* warm */
        uint64_t t0 = tsr_time_ns();
        int reps = seq < 512 ? 5 : 2;
        for (int r = 0; r < reps; r++)
            tsr_net_logits(full.net, tokens, logits, &count);
        double ms = (double)(tsr_time_ns() - t0) * 1e-6 / reps;
        printf("%10lld %22.3f %26.3f %7.1fx\n", (long long)at[k], step_ms[k], ms,
               ms / step_ms[k]);
        release(&full);
    }
    free(logits);
    free(tokens);
    return 0;
}
