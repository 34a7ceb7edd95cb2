/*
 * bind_plan.h - which cores, NUMA node and GPU a local rank should take: a
 * pure function of an hwloc topology, so that it is tested on synthetic
 * and XML topologies; bind.c applies its result to this process.
 *
 * The rules (docs/launcher.md, "Binding"):
 *  - With GPUs (listed in PCI bus id order, restricted to the visible ones
 *    when a filter is given), local rank i takes GPU i; with more ranks
 *    than GPUs, rank i takes GPU floor(i * G / R) and ranks share. Each
 *    rank's cores are the cores local to its GPU (the GPU's NUMA node),
 *    split into contiguous, even blocks among the ranks whose GPUs share
 *    that locality, in local rank order.
 *  - Without GPUs, the node's cores, in hwloc's logical order (which packs
 *    them by package and NUMA node), are split into R contiguous blocks
 *    whose sizes differ by at most one: block i is cores
 *    [floor(i*C/R), floor((i+1)*C/R)). With more ranks than cores, rank i
 *    takes core floor(i*C/R) and ranks share it.
 *  - A rank's thread count (OpenMP, BLAS) is the number of cores in its
 *    block, whatever the policy.
 *  - TSR_BIND_CORE binds to the PUs of the block's cores (hyperthreads
 *    included); TSR_BIND_NUMA to every PU of the NUMA node(s) the block
 *    touches; TSR_BIND_NONE binds nowhere (cpuset = the whole machine).
 *
 * Invariant: for R <= C (and no GPUs) the blocks of the R local ranks are
 * disjoint and cover every core.
 */
#ifndef TSR_LAUNCHER_BIND_PLAN_H
#define TSR_LAUNCHER_BIND_PLAN_H

#include <hwloc.h>

#include "tessera/config.h"
#include "tessera/status.h"

typedef struct tsr_bind_request {
    int local_rank;
    int local_size;
    tsr_bind_policy policy;
    /* GPUs this process may use, as indexes into the PCI-ordered GPU list
     * (CUDA_VISIBLE_DEVICES under CUDA_DEVICE_ORDER=PCI_BUS_ID); NULL: all */
    const int *visible_gpus;
    int visible_gpu_count;
} tsr_bind_request;

typedef struct tsr_bind_plan {
    hwloc_cpuset_t cpuset;   /* owned: the PUs to bind to */
    hwloc_nodeset_t nodeset; /* owned: the NUMA nodes of the rank's cores */
    hwloc_cpuset_t cores;    /* owned: the PUs of the rank's own cores (its block) */
    int first_core;          /* logical index of the block's first core */
    int core_count;          /* cores in the block (>= 1) */
    int shared;              /* 1 if other local ranks share the block */
    int threads;             /* OpenMP and BLAS threads: core_count */
    int gpu;                 /* CUDA ordinal among the visible GPUs; -1: none */
    char gpu_busid[20];      /* "0000:07:00.0", "" if none or no PCI */
} tsr_bind_plan;

/* Computes the plan of one local rank. On success the plan's bitmaps are
 * owned by the caller: release them with tsr_bind_plan_release(). */
tsr_status tsr_bind_plan_compute(hwloc_topology_t topo, const tsr_bind_request *request,
                                 tsr_bind_plan *plan);

void tsr_bind_plan_release(tsr_bind_plan *plan);

/* Parses a CUDA_VISIBLE_DEVICES value of device numbers ("0,2,3") into
 * out[0..*count). Returns 0 on success, -1 if it holds anything else (UUIDs,
 * MIG names), in which case the caller should not filter. "" means none. */
int tsr_bind_parse_visible_gpus(const char *text, int *out, int max, int *count);

const char *tsr_bind_policy_name(tsr_bind_policy policy);

#endif /* TSR_LAUNCHER_BIND_PLAN_H */
