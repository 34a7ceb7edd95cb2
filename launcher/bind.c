/*
 * bind.c - applies the binding plan to this process (bind.h).
 */
#include "bind.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind_plan.h"
#include "topo_load.h"

#define MAX_VISIBLE_GPUS 64

static int env_threads(void)
{
    const char *text = getenv("OMP_NUM_THREADS");
    if (text == NULL || *text == '\0')
        return 0;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    /* "4,2" (nested levels) counts by its first level */
    if (end == text || v < 1 || v > 4096 || (*end != '\0' && *end != ','))
        return 0;
    return (int)v;
}

static void fill_host(tsr_binding_report *out)
{
    const char *node = getenv("SLURMD_NODENAME");
    if (node != NULL && *node != '\0')
        snprintf(out->host, sizeof out->host, "%s", node);
    else if (gethostname(out->host, sizeof out->host - 1) != 0)
        snprintf(out->host, sizeof out->host, "unknown");
    out->host[sizeof out->host - 1] = '\0';
}

static tsr_status read_actual(hwloc_topology_t topo, tsr_binding_report *out)
{
    hwloc_cpuset_t now = hwloc_bitmap_alloc();
    tsr_status st = TSR_OK;
    if (now == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading the binding");
    else if (hwloc_get_cpubind(topo, now, HWLOC_CPUBIND_PROCESS) != 0)
        st = tsr_error_set(TSR_ERR_IO, "hwloc_get_cpubind failed: the OS does not report "
                                       "this process's binding");
    else
        hwloc_bitmap_list_snprintf(out->actual, sizeof out->actual, now);
    hwloc_bitmap_free(now);
    return st;
}

tsr_status tsr_bind_read_actual(tsr_binding_report *out)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "hwloc_topology_init failed");
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return tsr_error_set(TSR_ERR_IO, "hwloc could not load this machine's topology");
    }
    tsr_status st = read_actual(topo, out);
    hwloc_topology_destroy(topo);
    return st;
}

tsr_status tsr_bind_apply(const tsr_rank_info *info, tsr_bind_policy policy,
                          tsr_binding_report *out)
{
    memset(out, 0, sizeof *out);
    out->policy = policy;
    out->gpu = -1;
    fill_host(out);
    hwloc_topology_t topo = NULL;
    tsr_status st = tsr_topo_load(NULL, NULL, &topo);
    if (st != TSR_OK)
        return st;
    int visible[MAX_VISIBLE_GPUS], visible_count = 0;
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    int filter = cvd != NULL &&
                 tsr_bind_parse_visible_gpus(cvd, visible, MAX_VISIBLE_GPUS, &visible_count) == 0;
    tsr_bind_request request = {info->local_rank, info->local_size, policy,
                                filter ? visible : NULL, visible_count};
    tsr_bind_plan plan;
    st = tsr_bind_plan_compute(topo, &request, &plan);
    if (st != TSR_OK)
        goto done;
    if (policy != TSR_BIND_NONE) {
        if (hwloc_set_cpubind(topo, plan.cpuset, HWLOC_CPUBIND_PROCESS) != 0) {
            char want[256];
            hwloc_bitmap_list_snprintf(want, sizeof want, plan.cpuset);
            st = tsr_error_set(TSR_ERR_IO,
                               "binding local rank %d to PUs %s failed (cgroup or launcher "
                               "restrictions?); rerun with --bind none to keep the launcher's "
                               "binding",
                               info->local_rank, want);
            goto release;
        }
        out->applied = 1;
    }
    out->core_count = plan.core_count;
    out->first_core = plan.first_core;
    out->shared = plan.shared;
    out->gpu = plan.gpu;
    memcpy(out->gpu_busid, plan.gpu_busid, sizeof out->gpu_busid);
    hwloc_bitmap_list_snprintf(out->numa, sizeof out->numa, plan.nodeset);
    hwloc_bitmap_list_snprintf(out->cpus, sizeof out->cpus, plan.cpuset);
    out->threads = plan.threads;
    int from_env = env_threads();
    if (from_env > 0) {
        out->threads = from_env;
        out->threads_from_env = 1;
    }
    omp_set_num_threads(out->threads);
    openblas_set_num_threads(out->threads);
    st = read_actual(topo, out);
release:
    tsr_bind_plan_release(&plan);
done:
    hwloc_topology_destroy(topo);
    return st;
}

int tsr_bind_format_report(const tsr_rank_info *info, const tsr_binding_report *r, char *buf,
                           size_t size)
{
    char node[32], gpu[40];
    if (info->node_index >= 0 && info->node_count > 0)
        snprintf(node, sizeof node, "%d/%d", info->node_index, info->node_count);
    else
        snprintf(node, sizeof node, "?/?");
    if (r->gpu < 0)
        snprintf(gpu, sizeof gpu, "none");
    else if (r->gpu_busid[0] != '\0')
        snprintf(gpu, sizeof gpu, "%d@%s", r->gpu, r->gpu_busid);
    else
        snprintf(gpu, sizeof gpu, "%d", r->gpu);
    return snprintf(buf, size,
                    "tessera bind: rank=%d/%d node=%s local=%d/%d host=%s policy=%s cores=%d%s "
                    "cpus=%s actual=%s numa=%s gpu=%s threads=%d%s",
                    info->rank, info->world_size, node, info->local_rank, info->local_size,
                    r->host, tsr_bind_policy_name(r->policy), r->core_count,
                    r->shared ? "(shared)" : "", r->cpus, r->actual[0] ? r->actual : "?",
                    r->numa, gpu, r->threads, r->threads_from_env ? "(OMP_NUM_THREADS)" : "");
}
