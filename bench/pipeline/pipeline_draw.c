/*
 * pipeline_draw.c - draws a pipeline schedule as an ASCII timeline, from
 * the schedule functions and the event simulation, so that the pictures
 * in docs/parallelism.md are exactly what tessera runs.
 *
 *   pipeline_draw gpipe|1f1b|interleaved P M [V] [--stage-cost F B]
 *
 * One column is one time unit: a chunk's forward takes 1, its backward 2,
 * communication nothing (sends complete when their receive is posted).
 * --stage-cost gives a whole stage's forward and backward instead (a
 * chunk then takes F/V and B/V, which must be whole), so that drawings of
 * different V share one clock.
 * Each rank gets one lane of forwards and one of backwards per model
 * chunk; the character is the microbatch (0-9, then a-z). Below the
 * timeline, each rank's compute order and its idle time. Not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharding/pipeline_sim.h"

static char mb_char(int mb)
{
    return mb < 10 ? (char)('0' + mb) : mb < 36 ? (char)('a' + mb - 10) : '#';
}

static int parse_kind(const char *s, tsr_pp_schedule_kind *kind)
{
    for (int k = 0; k < TSR_PP_SCHEDULE_COUNT; k++) {
        if (strcmp(s, tsr_pp_schedule_kind_name((tsr_pp_schedule_kind)k)) == 0) {
            *kind = (tsr_pp_schedule_kind)k;
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    tsr_pp_schedule_kind kind;
    int npos = argc;
    int64_t stage_f = 0, stage_b = 0;
    if (argc >= 4 && strcmp(argv[argc - 3], "--stage-cost") == 0) {
        npos = argc - 3;
        stage_f = atoll(argv[argc - 2]);
        stage_b = atoll(argv[argc - 1]);
    }
    if (npos < 4 || npos > 5 || parse_kind(argv[1], &kind) != 0) {
        fprintf(stderr,
                "usage: pipeline_draw gpipe|1f1b|interleaved P M [V] [--stage-cost F B]\n");
        return 2;
    }
    int p = atoi(argv[2]), m = atoi(argv[3]), v = npos == 5 ? atoi(argv[4]) : 1;
    if (p < 1 || p > 64 || v < 1) {
        fprintf(stderr, "pipeline_draw: P must be 1..64 and V at least 1\n");
        return 2;
    }
    tsr_pp_sim_options opt = {.forward_cost = 1, .backward_cost = 2,
                              .send_mode = TSR_PP_SEND_RENDEZVOUS};
    if (stage_f > 0 || stage_b > 0) {
        if (stage_f < 1 || stage_b < 1 || stage_f % v != 0 || stage_b % v != 0) {
            fprintf(stderr, "pipeline_draw: --stage-cost F B must be positive multiples of V\n");
            return 2;
        }
        opt.forward_cost = stage_f / v;
        opt.backward_cost = stage_b / v;
    }
    tsr_pp_action *lists[64] = {0};
    int64_t *starts[64] = {0};
    size_t counts[64] = {0};
    tsr_pp_sim_rank_stats stats[64];
    char *grid = NULL;
    int rc = 1;
    for (int r = 0; r < p; r++) {
        tsr_pp_schedule_spec spec = {kind, p, r, m, v};
        size_t n = 0;
        if (tsr_pp_schedule_count(&spec, &n) != TSR_OK)
            goto fail;
        lists[r] = malloc((n + 1) * sizeof *lists[r]);
        starts[r] = malloc((n + 1) * sizeof *starts[r]);
        if (lists[r] == NULL || starts[r] == NULL ||
            tsr_pp_schedule_build(&spec, lists[r], n, &counts[r]) != TSR_OK)
            goto fail;
    }
    int64_t makespan = 0;
    if (tsr_pp_sim_run(p, m, v, (const tsr_pp_action *const *)lists, counts, &opt, stats,
                       &makespan, starts) != TSR_OK)
        goto fail;

    /* lanes: rank r, F of chunk c = row (r * v + c) * 2, B = that + 1 */
    size_t width = (size_t)makespan, rows = (size_t)p * (size_t)v * 2;
    grid = malloc(rows * (width + 1));
    if (grid == NULL)
        goto fail;
    memset(grid, ' ', rows * (width + 1));
    for (int r = 0; r < p; r++) {
        for (size_t i = 0; i < counts[r]; i++) {
            const tsr_pp_action *a = &lists[r][i];
            if (a->kind == TSR_PP_EXCHANGE)
                continue;
            size_t row = ((size_t)r * (size_t)v + (size_t)a->chunk) * 2 +
                         (a->kind == TSR_PP_BACKWARD);
            int64_t len = a->kind == TSR_PP_FORWARD ? opt.forward_cost : opt.backward_cost;
            for (int64_t t = starts[r][i]; t < starts[r][i] + len; t++)
                grid[row * (width + 1) + (size_t)t] = mb_char(a->microbatch);
        }
    }

    printf("%s, p=%d, m=%d, v=%d: one column per time unit; a chunk's forward takes %lld, "
           "its backward %lld\n",
           tsr_pp_schedule_kind_name(kind), p, m, v, (long long)opt.forward_cost,
           (long long)opt.backward_cost);
    printf("lanes F<c> / B<c>: forwards / backwards of model chunk c; the digit is the "
           "microbatch\n\n");
    printf("%-10s", "");
    for (size_t t = 0; t < width; t += 10)
        printf(t + 10 < width ? "%-10d" : "%d", (int)(t / 10) % 10);
    printf("\n%-10s", "time");
    for (size_t t = 0; t < width; t++)
        putchar((char)('0' + t % 10));
    putchar('\n');
    for (int r = 0; r < p; r++) {
        for (int c = 0; c < v; c++) {
            for (int b = 0; b < 2; b++) {
                size_t row = ((size_t)r * (size_t)v + (size_t)c) * 2 + (size_t)b;
                char head[32];
                if (c == 0 && b == 0)
                    snprintf(head, sizeof head, "rank %d %c%d", r, b ? 'B' : 'F', c);
                else
                    snprintf(head, sizeof head, "       %c%d", b ? 'B' : 'F', c);
                int len = (int)width;
                while (len > 0 && grid[row * (width + 1) + (size_t)len - 1] == ' ')
                    len--;
                printf("%-10s%.*s\n", head, len, &grid[row * (width + 1)]);
            }
        }
    }
    printf("\ncompute order (F/B microbatch%s):\n", v > 1 ? ".chunk" : "");
    for (int r = 0; r < p; r++) {
        printf("rank %d:", r);
        for (size_t i = 0; i < counts[r]; i++) {
            const tsr_pp_action *a = &lists[r][i];
            if (a->kind == TSR_PP_EXCHANGE)
                continue;
            if (v > 1)
                printf(" %c%d.%d", a->kind == TSR_PP_FORWARD ? 'F' : 'B', a->microbatch,
                       a->chunk);
            else
                printf(" %c%d", a->kind == TSR_PP_FORWARD ? 'F' : 'B', a->microbatch);
        }
        printf("\n");
    }
    printf("\nstep %lld units\n", (long long)makespan);
    for (int r = 0; r < p; r++)
        printf("rank %d: busy %lld, idle %lld (bubble %.4f), peak in flight %d\n", r,
               (long long)stats[r].busy, (long long)stats[r].idle,
               (double)stats[r].idle / (double)makespan, stats[r].peak_in_flight);
    rc = 0;
fail:
    if (rc != 0)
        fprintf(stderr, "pipeline_draw: %s\n", tsr_last_error());
    for (int r = 0; r < p; r++) {
        free(lists[r]);
        free(starts[r]);
    }
    free(grid);
    return rc;
}
