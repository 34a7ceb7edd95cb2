/*
 * bind.h - binds this process to the cores (and picks the GPU) that its
 * local rank should have, and reports what it did.
 *
 * Call it once per process, after tsr_rank_info_from_env() and before any
 * large allocation (memory is then first touched from the rank's own NUMA
 * node) and before OpenMP or BLAS threads do work:
 *
 *     tsr_rank_info info = tsr_rank_info_from_env();
 *     tsr_binding_report bind;
 *     tsr_status st = tsr_bind_apply(&info, cfg.bind, &bind);
 *     if (st != TSR_OK) ... tsr_last_error() says why
 *     char line[TSR_BIND_REPORT_MAX];
 *     tsr_bind_format_report(&info, &bind, line, sizeof line);
 *     puts(line);                 // one line per rank
 *     // bind.gpu: the CUDA device ordinal to select, -1 without GPU
 *
 * The mapping itself is bind_plan.h's; this module loads this machine's
 * topology, applies the plan with hwloc_set_cpubind (process-wide, so
 * threads started earlier move too), sets the OpenMP and OpenBLAS thread
 * counts to the rank's core count unless OMP_NUM_THREADS is set, and reads
 * the binding back from the OS. Callers: cmd_train.c, cmd_topo.c.
 */
#ifndef TSR_LAUNCHER_BIND_H
#define TSR_LAUNCHER_BIND_H

#include <stddef.h>

#include "rank_env.h"
#include "tessera/config.h"
#include "tessera/status.h"

#define TSR_BIND_REPORT_MAX 1024

typedef struct tsr_binding_report {
    tsr_bind_policy policy;
    int applied;          /* 1 if hwloc_set_cpubind succeeded; 0 for policy none */
    int core_count;       /* cores of the rank's block */
    int first_core;       /* logical index of its first core */
    int shared;           /* 1 if other local ranks share the block */
    int threads;          /* OpenMP/BLAS threads now in effect */
    int threads_from_env; /* 1 if OMP_NUM_THREADS chose them */
    int gpu;              /* CUDA ordinal (PCI bus order among visible GPUs); -1: none */
    char gpu_busid[20];   /* "0000:07:00.0" or "" */
    char numa[64];        /* os indexes of its NUMA node(s), e.g. "1" */
    char cpus[256];       /* PU os indexes planned, e.g. "4-5,12-13" */
    char actual[256];     /* PU os indexes read back from the OS */
    char host[64];        /* SLURMD_NODENAME under Slurm, else the hostname */
} tsr_binding_report;

/* Maps info's local rank onto this machine and binds this process with
 * `policy`; fills *out (also for TSR_BIND_NONE, where nothing is bound but
 * threads and GPU are still chosen). Returns TSR_ERR_* with a message if the
 * topology cannot be read or the OS refuses the binding. */
tsr_status tsr_bind_apply(const tsr_rank_info *info, tsr_bind_policy policy,
                          tsr_binding_report *out);

/* Re-reads the binding this process has now from the OS into out->actual. */
tsr_status tsr_bind_read_actual(tsr_binding_report *out);

/* Formats one line (no newline), stable for scripts to parse:
 *   tessera bind: rank=3/4 node=1/2 local=1/2 host=n2 policy=core cores=1
 *   cpus=1 actual=1 numa=0 gpu=none threads=1
 * (one line; gpu=0@0000:07:00.0 with a GPU; node=?/? while unknown).
 * Returns the length snprintf would have written. */
int tsr_bind_format_report(const tsr_rank_info *info, const tsr_binding_report *report, char *buf,
                           size_t size);

#endif /* TSR_LAUNCHER_BIND_H */
