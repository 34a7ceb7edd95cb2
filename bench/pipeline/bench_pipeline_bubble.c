/*
 * bench_pipeline_bubble.c - the pipeline bubble of each schedule, from the
 * event simulation of all ranks' action lists, beside the textbook value.
 *
 *   bench_pipeline_bubble [--forward-cost F] [--backward-cost B]
 *
 * For p in {2, 4, 8} and m in {4, 8, 16}, each schedule (GPipe, 1F1B,
 * interleaved 1F1B with v = 2 and v = 4 model chunks per rank) is built
 * for every rank and run in tsr_pp_sim_run(): a chunk's FORWARD costs F
 * units (default 1) and its BACKWARD B (default 2) for a whole stage,
 * F/v and B/v for one of v chunks; communication costs nothing, and a
 * send completes only when its receive is posted. step = the step's
 * length in units of one stage's forward F, comparable across rows. bubble =
 * a rank's idle time / step time, the largest over ranks; theory = (p-1)/
 * (v*m + p-1) (v = 1 for GPipe and 1F1B). peak = the most microbatch-
 * chunks rank 0 holds between forward and backward (activation memory,
 * one unit = one chunk, 1/v of a stage), and peak/v the same in whole
 * stages. Interleaving needs m to be a multiple of p (as in Megatron-LM);
 * other rows are marked "-".
 *
 * This is the schedule's bubble in an ideal machine. The bubble measured on
 * real ranks (time blocked in receives, per stage, during training) comes
 * with the pipeline executor in the trainer and is not printed here.
 * Last, the same for pipelines of layouts at scale (p 64 and 128, m 512
 * and 1024), with the seconds each simulation takes. Not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharding/pipeline_sim.h"
#include "tessera/timer.h"

static void usage(void)
{
    fprintf(stderr, "usage: bench_pipeline_bubble [--forward-cost F] [--backward-cost B]\n");
}

static void row(int p, int m, tsr_pp_schedule_kind kind, int v, const tsr_pp_sim_options *opt)
{
    tsr_pp_schedule_spec spec = {kind, p, 0, m, v};
    char label[32];
    snprintf(label, sizeof label, "%s", tsr_pp_schedule_kind_name(kind));
    printf("%3d %4d  %-12s %2d  ", p, m, label, v);
    if (tsr_pp_schedule_validate(&spec) != TSR_OK) {
        printf("%12s %12s %10s %6s %7s   (m %% p != 0)\n", "-", "-", "-", "-", "-");
        return;
    }
    /* chunk costs in quarters of a unit, so that F/v is whole for v | 4 */
    tsr_pp_sim_options chunk = *opt;
    chunk.forward_cost = opt->forward_cost * 4 / v;
    chunk.backward_cost = opt->backward_cost * 4 / v;
    tsr_pp_sim_rank_stats stats[8];
    int64_t makespan = 0;
    if (tsr_pp_sim_schedule(&spec, &chunk, stats, &makespan) != TSR_OK) {
        printf("simulation failed: %s\n", tsr_last_error());
        return;
    }
    double worst = 0.0;
    for (int r = 0; r < p; r++) {
        double b = makespan > 0 ? (double)stats[r].idle / (double)makespan : 0.0;
        if (b > worst)
            worst = b;
    }
    printf("%12.4f %12.4f %10.2f %6d %7.2f\n", worst, tsr_pp_schedule_bubble_theory(&spec),
           (double)makespan / (4.0 * (double)opt->forward_cost), stats[0].peak_in_flight,
           (double)stats[0].peak_in_flight / (double)v);
}

/* The pipelines of layouts at scale: how long simulating one takes. Only
 * the pipeline dimension is simulated (tensor- and data-parallel ranks of
 * a stage run its list in lockstep), so a layout of 16,384 GPUs as
 * TP 8 x PP 128 x DP 16 is the simulation of 128 ranks. */
static void scale_row(int p, int m, tsr_pp_schedule_kind kind, int v,
                      const tsr_pp_sim_options *opt)
{
    tsr_pp_schedule_spec spec = {kind, p, 0, m, v};
    tsr_pp_sim_options chunk = *opt;
    chunk.forward_cost = opt->forward_cost * 4 / v;
    chunk.backward_cost = opt->backward_cost * 4 / v;
    tsr_pp_sim_rank_stats *stats = calloc((size_t)p, sizeof *stats);
    int64_t makespan = 0;
    double t0 = tsr_time_s();
    tsr_status st = stats != NULL ? tsr_pp_sim_schedule(&spec, &chunk, stats, &makespan)
                                  : TSR_ERR_OUT_OF_MEMORY;
    double took = tsr_time_s() - t0;
    if (st != TSR_OK) {
        printf("%4d %5d  %-12s %2d  simulation failed: %s\n", p, m,
               tsr_pp_schedule_kind_name(kind), v, tsr_last_error());
    } else {
        double worst = 0.0;
        for (int r = 0; r < p; r++) {
            double b = makespan > 0 ? (double)stats[r].idle / (double)makespan : 0.0;
            worst = b > worst ? b : worst;
        }
        printf("%4d %5d  %-12s %2d  %12.4f %12.4f %10.3f\n", p, m,
               tsr_pp_schedule_kind_name(kind), v, worst, tsr_pp_schedule_bubble_theory(&spec),
               took);
    }
    free(stats);
}

int main(int argc, char **argv)
{
    tsr_pp_sim_options opt = {.forward_cost = 1, .backward_cost = 2,
                              .send_mode = TSR_PP_SEND_RENDEZVOUS};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--forward-cost") == 0) {
            opt.forward_cost = atoll(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--backward-cost") == 0) {
            opt.backward_cost = atoll(argv[++i]);
        } else {
            usage();
            return 2;
        }
    }
    if (opt.forward_cost < 1 || opt.backward_cost < 0) {
        usage();
        return 2;
    }
    printf("# pipeline bubble: simulated schedule vs theory (a stage's forward %lld, backward "
           "%lld, a chunk's 1/v of that; communication free)\n",
           (long long)opt.forward_cost, (long long)opt.backward_cost);
    printf("# measured-on-real-ranks bubble: reported by the trainer's pipeline executor, not "
           "here\n");
    printf("%3s %4s  %-12s %2s  %12s %12s %10s %6s %7s\n", "p", "m", "schedule", "v",
           "bubble(sim)", "theory", "step", "peak", "peak/v");
    const int ps[] = {2, 4, 8}, ms[] = {4, 8, 16};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 3; j++) {
            row(ps[i], ms[j], TSR_PP_SCHEDULE_GPIPE, 1, &opt);
            row(ps[i], ms[j], TSR_PP_SCHEDULE_1F1B, 1, &opt);
            row(ps[i], ms[j], TSR_PP_SCHEDULE_INTERLEAVED, 2, &opt);
            row(ps[i], ms[j], TSR_PP_SCHEDULE_INTERLEAVED, 4, &opt);
        }
    }
    printf("\n# at scale (e.g. 16,384 GPUs = TP 8 x PP 128 x DP 16): the seconds one simulation "
           "takes\n");
    printf("%4s %5s  %-12s %2s  %12s %12s %10s\n", "p", "m", "schedule", "v", "bubble(sim)",
           "theory", "seconds");
    scale_row(64, 512, TSR_PP_SCHEDULE_1F1B, 1, &opt);
    scale_row(64, 512, TSR_PP_SCHEDULE_INTERLEAVED, 2, &opt);
    scale_row(128, 1024, TSR_PP_SCHEDULE_1F1B, 1, &opt);
    scale_row(128, 1024, TSR_PP_SCHEDULE_INTERLEAVED, 4, &opt);
    return 0;
}
