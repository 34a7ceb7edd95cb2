/*
 * cmd_plan.c - `tessera plan`: every layout of N devices for a model, with
 * the memory each device needs.
 *
 *   tessera plan --gpus N [--device-memory GIB] [--threads-per-device T]
 *                [train's model and batch flags]
 *
 * Layouts: TP x CP x PP x DP = N for every TP dividing N, CP dividing N/TP
 * and PP dividing N/(TP CP), with sequence parallelism (TP > 1), the
 * distributed optimizer (DP x CP > 1) and full recomputation each on and
 * off; context parallelism is planned (a rank's stage as the model at
 * sequence T/CP, layout_estimate.c), not trained; those `tessera train` would
 * refuse (tsr_config_validate, the builder's own checks: heads or the MLP
 * not dividing by TP, layers by PP, the batch by DP) are left out and
 * counted. Memory is not estimated: for every pipeline stage the model is
 * declared as that stage's rank declares it (tsr_net_build) and planned
 * (tsr_net_plan, tsr_trainer_plan_sharded) exactly as training plans
 * before it allocates, so the numbers are what `tessera train` allocates
 * for that layout (fp32, this build); the largest stage is the device's
 * requirement. The attention kernels' scratch grows with the threads of a
 * rank: it is sized for --threads-per-device (default this process's
 * OpenMP threads). The pipeline bubble is the idle share of the step when
 * the schedule training would run (1F1B here) is simulated with a
 * backward twice as long as a forward (tsr_pp_sim_schedule). With
 * --cluster the iteration time of each layout is predicted (time_model.h)
 * on that machine, term by term, and the layouts listed fastest first.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "commands.h"
#include "data/dataset.h"
#include "layout_estimate.h"
#include "model_select.h"
#include "rank_env.h"
#include "sharding/net.h"
#include "train/trainer.h"
#include "train_flags.h"
#include "train_supported.h"

typedef struct layout {
    int tp, cp, pp, dp, ep, vpp, mbs;
    bool sp, dist, recompute;
    tsr_layout_estimate est;
} layout;

static int by_time(const void *a, const void *b)
{
    const layout *x = a, *y = b;
    return (x->est.time.total > y->est.time.total) - (x->est.time.total < y->est.time.total);
}

static int by_memory(const void *a, const void *b)
{
    const layout *x = a, *y = b;
    if (x->est.total != y->est.total)
        return x->est.total < y->est.total ? -1 : 1;
    if (x->tp != y->tp)
        return x->tp - y->tp;
    return x->pp - y->pp;
}

/* --precision: what `tessera plan` can plan, and how its header says it. */
typedef struct plan_precision {
    const char *name;
    tsr_layout_precision bytes;
    const char *memory; /* the header's words for the memory columns */
} plan_precision;

static const plan_precision precisions[] = {
    {"fp32", TSR_LAYOUT_FP32, "as tessera train allocates it (fp32)"},
    {"bf16", TSR_LAYOUT_BF16,
     "in bf16 mixed precision (bf16 weights and activations, fp32 gradients and master weights)"},
    {"fp16", TSR_LAYOUT_FP16,
     "in fp16 mixed precision (fp16 weights, activations and gradients, fp32 master weights)"},
};

typedef struct plan_args {
    int gpus, threads;
    double device_gib;
    const char *cluster;             /* --cluster: predict iteration times */
    const plan_precision *precision; /* --precision */
    bool vary_micro_batch;           /* --vary-micro-batch: every power of two dividing the batch */
} plan_args;

/* What every layout of one plan shares. */
typedef struct enumeration {
    const tsr_config *base;
    const plan_args *args;
    const tsr_model_spec *spec;
    int64_t vocab;
    const tsr_machine *machine;
} enumeration;

/* The layout's configuration, checked as tessera train checks it, and
 * planned; an error says why the model or the flags refuse it. */
static tsr_status try_layout(const enumeration *e, layout *l)
{
    tsr_config cfg = *e->base;
    cfg.tensor_model_parallel_size = l->tp;
    cfg.context_parallel_size = l->cp;
    cfg.pipeline_model_parallel_size = l->pp;
    cfg.expert_model_parallel_size = l->ep;
    cfg.micro_batch_size = l->mbs;
    cfg.num_layers_per_virtual_pipeline_stage =
        l->vpp > 1
            ? (cfg.num_layers % (l->pp * l->vpp) == 0 ? cfg.num_layers / (l->pp * l->vpp) : -1)
            : 0;
    if (cfg.num_layers_per_virtual_pipeline_stage < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%d layers do not split into %d x %d stages",
                             cfg.num_layers, l->pp, l->vpp);
    cfg.sequence_parallel = l->sp;
    cfg.use_distributed_optimizer = l->dist;
    cfg.recompute_granularity = l->recompute ? TSR_RECOMPUTE_FULL : TSR_RECOMPUTE_NONE;
    cfg.recompute_method = TSR_RECOMPUTE_UNIFORM;
    cfg.recompute_num_layers = 1;
    int gpus = e->args->gpus;
    tsr_status why = tsr_config_validate(&cfg, gpus);
    /* context parallelism is planned for the machines it would run on,
     * although this build does not train with it: the rest is checked */
    tsr_config trained = cfg;
    trained.context_parallel_size = 1;
    if (why == TSR_OK)
        why = tsr_train_check_supported(&trained, gpus / l->cp);
    if (why == TSR_OK)
        why = tsr_layout_estimate_of(&cfg, e->spec, e->vocab, gpus, e->machine,
                                     omp_get_max_threads(), e->args->precision->bytes, &l->est);
    return why;
}

/* --gpus and --device-memory out of argv (the rest are train's flags). */
static tsr_status take_own_flags(int *argc, char **argv, plan_args *a)
{
    int kept = 0;
    for (int i = 0; i < *argc; i++) {
        bool gpus = strcmp(argv[i], "--gpus") == 0, mem = strcmp(argv[i], "--device-memory") == 0;
        bool threads = strcmp(argv[i], "--threads-per-device") == 0;
        bool cluster = strcmp(argv[i], "--cluster") == 0;
        bool precision = strcmp(argv[i], "--precision") == 0;
        if (strcmp(argv[i], "--vary-micro-batch") == 0) {
            a->vary_micro_batch = true;
            continue;
        }
        if (!gpus && !mem && !threads && !cluster && !precision) {
            argv[kept++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc)
            return tsr_error_set(TSR_ERR_INVALID_ARG, "%s needs a value", argv[i]);
        if (cluster) {
            a->cluster = argv[++i];
            continue;
        }
        if (precision) {
            const char *name = argv[++i];
            size_t k = 0, n = sizeof precisions / sizeof precisions[0];
            while (k < n && strcmp(precisions[k].name, name) != 0)
                k++;
            if (k == n)
                return tsr_error_set(TSR_ERR_INVALID_ARG,
                                     "--precision %s: give fp32 (this build), bf16 or fp16 "
                                     "(Megatron's mixed precision on a GPU)",
                                     name);
            a->precision = &precisions[k];
            continue;
        }
        char *end = NULL;
        double v = strtod(argv[i + 1], &end);
        bool whole = gpus || threads;
        if (end == argv[i + 1] || *end != '\0' || !(v > 0.0) || (whole && v != (int)v) || v > 1e7)
            return tsr_error_set(TSR_ERR_INVALID_ARG, "%s %s: give a positive %s", argv[i],
                                 argv[i + 1],
                                 gpus      ? "whole number of devices"
                                 : threads ? "whole number of threads"
                                           : "number of GiB");
        if (gpus)
            a->gpus = (int)v;
        else if (threads)
            a->threads = (int)v;
        else
            a->device_gib = v;
        i++;
    }
    *argc = kept;
    if (a->gpus <= 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "give --gpus N, the devices to lay the model out on (see 'tessera "
                             "plan --help')");
    return TSR_OK;
}

static void print_help(void)
{
    puts("usage: tessera plan --gpus N [--device-memory GIB] [--threads-per-device T]\n"
         "                    [--cluster PRESET|FILE] [--precision fp32|bf16|fp16]\n"
         "                    [--vary-micro-batch] [model and batch flags of 'tessera train']\n\n"
         "lists every layout (TP x CP x PP x DP = N; EP dividing DP x CP for an MoE model,\n"
         "context parallelism planned though not trained by this build; virtual\n"
         "pipeline stages, sequence parallel, distributed optimizer, full recomputation;\n"
         "with --vary-micro-batch every power-of-two micro batch) the model takes, with\n"
         "the memory each device allocates in it (the largest pipeline stage), smallest\n"
         "first; --device-memory marks which fit\n"
         "and refuses when none does; kernel scratch is sized for --threads-per-device\n"
         "(default: this process's OpenMP threads); --cluster (dgx-a100, dgx-h100, local or\n"
         "a file from 'tessera calibrate') adds the predicted iteration time and its terms,\n"
         "and sorts by it; --precision bf16|fp16 plans the memory and time of Megatron's\n"
         "mixed precision on a GPU (this build trains in fp32)");
}

static void print_times(const layout *found, int count)
{
    printf("\npredicted iteration time per layout, fastest first (ms; terms in "
           "docs/planner.md):\n");
    printf("%4s %3s %4s %4s %3s %3s %4s %3s %4s %4s %10s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n",
           "TP", "CP", "PP", "DP", "EP", "VPP", "MBS", "SP", "DOPT", "RC", "total", "TFLOP/s",
           "compute", "elemwise", "tp", "cp", "pp", "ep", "dp", "bubble");
    for (int i = 0; i < count; i++) {
        const layout *l = &found[i];
        const tsr_time_prediction *t = &l->est.time;
        printf("%4d %3d %4d %4d %3d %3d %4d %3s %4s %4s %10.3f %9.3f %9.3f %9.3f %9.3f %9.3f "
               "%9.3f %9.3f %9.3f %9.3f\n",
               l->tp, l->cp, l->pp, l->dp, l->ep, l->vpp, l->mbs, l->sp ? "on" : "-",
               l->dist ? "on" : "-", l->recompute ? "full" : "-", t->total * 1e3, l->est.tflops,
               t->compute * 1e3, t->elementwise * 1e3, t->tp * 1e3, t->cp * 1e3, t->pp * 1e3,
               t->ep * 1e3, t->dp * 1e3, t->bubble * 1e3);
    }
}

/* The layouts taken so far, and what was refused. */
typedef struct layout_list {
    layout *found; /* NULL: out of memory */
    int count;
    size_t capacity;
    int refused;
    char first_reason[512];
} layout_list;

static void list_add(layout_list *list, const layout *l)
{
    if ((size_t)list->count == list->capacity) {
        layout *more = realloc(list->found, 2 * list->capacity * sizeof *more);
        if (more == NULL) {
            free(list->found);
            list->found = NULL;
            return;
        }
        list->found = more;
        list->capacity *= 2;
    }
    list->found[list->count++] = *l;
}

/* Every layout of one TP x CP x PP split: expert-parallel sizes dividing
 * dp x cp (an MoE model), virtual stages (PP > 1), micro batches
 * (--vary-micro-batch), and SP, the distributed optimizer and
 * recomputation on and off. */
static void try_split(const enumeration *e, int tp, int cp, int pp, layout_list *list)
{
    const plan_args *a = e->args;
    int dp = a->gpus / tp / cp / pp;
    int per_rank = tsr_config_global_batch_size(e->base, a->gpus / cp) / dp;
    for (int ep = 1; ep <= dp * cp && list->found != NULL; ep++) {
        if ((dp * cp) % ep != 0 || (ep > 1 && e->base->num_experts <= 0))
            continue;
        for (int vpp = 1; vpp <= (pp > 1 ? 8 : 1) && list->found != NULL; vpp *= 2)
            for (int mbs = 1; mbs <= per_rank && list->found != NULL; mbs *= 2) {
                if (a->vary_micro_batch ? per_rank % mbs != 0
                                        : mbs != e->base->micro_batch_size)
                    continue;
                for (int v = 0; v < 8 && list->found != NULL; v++) {
                    layout l = {.tp = tp, .cp = cp, .pp = pp, .dp = dp, .ep = ep, .vpp = vpp,
                                .mbs = mbs, .sp = v & 1, .dist = (v >> 1) & 1,
                                .recompute = (v >> 2) & 1};
                    if ((l.sp && tp == 1) || (l.dist && dp * cp == 1))
                        continue;
                    if (try_layout(e, &l) == TSR_OK) {
                        list_add(list, &l);
                    } else if (list->refused++ == 0) {
                        snprintf(list->first_reason, sizeof list->first_reason,
                                 "TP %d x CP %d x PP %d: %s", tp, cp, pp, tsr_last_error());
                    }
                }
            }
    }
}

static tsr_status run_plan(const tsr_config *base, const plan_args *a)
{
    if (a->threads > 0)
        omp_set_num_threads(a->threads);
    tsr_machine machine;
    if (a->cluster != NULL) {
        tsr_status st = tsr_machine_load(a->cluster, &machine);
        if (st != TSR_OK)
            return st;
    }
    tsr_dataset *ds = NULL;
    tsr_status st = tsr_dataset_open(base, &ds);
    if (st != TSR_OK)
        return st;
    int64_t vocab = base->vocab_size > 0 ? base->vocab_size : ds->vocab_size;
    tsr_dataset_close(ds);
    const tsr_model_entry *entry = NULL;
    tsr_spec_arena *arena = NULL;
    tsr_model_spec spec;
    if ((st = tsr_model_select(base, &entry)) != TSR_OK ||
        (st = tsr_spec_arena_create(&arena)) != TSR_OK ||
        (st = entry->build(base, arena, &spec)) != TSR_OK) {
        tsr_spec_arena_destroy(arena);
        return st;
    }
    layout_list list = {calloc(256, sizeof(layout)), 0, 256, 0, ""};
    enumeration e = {base, a, &spec, vocab, a->cluster != NULL ? &machine : NULL};
    for (int tp = 1; tp <= a->gpus && list.found != NULL; tp++)
        for (int cp = 1; a->gpus % tp == 0 && cp <= a->gpus / tp && list.found != NULL; cp++)
            for (int pp = 1; (a->gpus / tp) % cp == 0 && pp <= a->gpus / tp / cp; pp++)
                if ((a->gpus / tp / cp) % pp == 0 && list.found != NULL)
                    try_split(&e, tp, cp, pp, &list);
    layout *found = list.found;
    int count = list.count, refused = list.refused;
    const char *first_reason = list.first_reason;
    tsr_spec_arena_destroy(arena);
    if (found == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    if (count == 0) {
        free(found);
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "no layout of %d devices takes this model (%d tried; the first "
                             "refusal: %s)",
                             a->gpus, refused, first_reason);
    }
    qsort(found, (size_t)count, sizeof *found, by_memory);
    double gib = 1024.0 * 1024.0 * 1024.0, mib = 1024.0 * 1024.0;
    /* GiB, or MiB for a model whose every layout is under one GiB */
    double unit = found[count - 1].est.total >= gib ? gib : mib;
    int fits = 0;
    printf("%d layouts of %d devices (%d refused by the model or the flags); memory per device "
           "in %s, %s, %d thread(s) per device, of the largest pipeline stage:\n",
           count, a->gpus, refused, unit == gib ? "GiB" : "MiB", a->precision->memory,
           omp_get_max_threads());
    printf("%4s %3s %4s %4s %3s %3s %4s %3s %4s %4s %10s %10s %10s %12s %10s %10s %6s %7s %14s%s\n",
           "TP", "CP", "PP", "DP", "EP", "VPP", "MBS", "SP", "DOPT", "RC", "params", "grads",
           "optimizer", "activations", "scratch", "total", "stage", "bubble", "stage 0 (MiB)",
           a->device_gib > 0.0 ? "  fits" : "");
    for (int i = 0; i < count; i++) {
        const layout *l = &found[i];
        const tsr_layout_estimate *est = &l->est;
        bool ok = a->device_gib <= 0.0 || (double)est->total <= a->device_gib * gib;
        fits += ok;
        char bubble[16] = "-";
        if (l->pp > 1 && est->bubble >= 0.0)
            snprintf(bubble, sizeof bubble, "%.1f%%", 100.0 * est->bubble);
        printf("%4d %3d %4d %4d %3d %3d %4d %3s %4s %4s %10.3f %10.3f %10.3f %12.3f %10.3f "
               "%10.3f %6d %7s %14.2f%s\n",
               l->tp, l->cp, l->pp, l->dp, l->ep, l->vpp, l->mbs, l->sp ? "on" : "-",
               l->dist ? "on" : "-", l->recompute ? "full" : "-",
               (double)est->bytes[TSR_MEM_PARAMS] / unit,
               (double)est->bytes[TSR_MEM_GRADS] / unit,
               (double)est->bytes[TSR_MEM_OPTIMIZER] / unit,
               (double)est->bytes[TSR_MEM_ACTIVATIONS] / unit,
               (double)est->bytes[TSR_MEM_SCRATCH] / unit, (double)est->total / unit,
               est->largest_stage, bubble, (double)est->stage0_total / mib,
               a->device_gib > 0.0 ? (ok ? "  yes" : "  no") : "");
    }
    size_t smallest = found[0].est.total;
    if (a->cluster != NULL) {
        qsort(found, (size_t)count, sizeof *found, by_time);
        printf("\non %s:", machine.name);
        print_times(found, count);
    }
    free(found);
    if (fits == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "no layout fits --device-memory %g GiB: the smallest needs %.3f GiB "
                             "per device; add devices, shorten the micro batch or sequence, or "
                             "shrink the model",
                             a->device_gib, (double)smallest / gib);
    return TSR_OK;
}

int tsr_cmd_plan(int argc, char **argv)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    if (tsr_args_want_help(argc, argv)) {
        if (info.rank == 0)
            print_help();
        return 0;
    }
    plan_args a = {0, 0, 0.0, NULL, &precisions[0], false};
    char **args = malloc((size_t)(argc + 1) * sizeof *args);
    if (args == NULL)
        return 1;
    memcpy(args, argv, (size_t)argc * sizeof *args);
    int n = argc;
    tsr_config cfg;
    tsr_status st = take_own_flags(&n, args, &a);
    if (st == TSR_OK)
        st = tsr_train_config_parse(&cfg, n, args);
    if (st == TSR_OK && info.world_size > 1)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "tessera plan runs as one process; start it without mpirun/srun");
    if (st == TSR_OK)
        st = run_plan(&cfg, &a);
    free(args);
    if (st != TSR_OK)
        return tsr_report_error_once(info.rank, "plan", st);
    return 0;
}
