/*
 * bind_plan.c - the rank -> cores / NUMA node / GPU mapping (bind_plan.h).
 */
#include "bind_plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "topo_devices.h"

const char *tsr_bind_policy_name(tsr_bind_policy policy)
{
    switch (policy) {
    case TSR_BIND_CORE:
        return "core";
    case TSR_BIND_NUMA:
        return "numa";
    case TSR_BIND_NONE:
        break;
    }
    return "none";
}

int tsr_bind_parse_visible_gpus(const char *text, int *out, int max, int *count)
{
    *count = 0;
    const char *p = text;
    while (*p != '\0') {
        if (*p < '0' || *p > '9')
            return -1;
        errno = 0;
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (errno != 0 || v > 1 << 20 || *count >= max)
            return -1;
        out[(*count)++] = (int)v;
        p = end;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -1;
    }
    return 0;
}

void tsr_bind_plan_release(tsr_bind_plan *plan)
{
    hwloc_bitmap_free(plan->cpuset);
    hwloc_bitmap_free(plan->nodeset);
    hwloc_bitmap_free(plan->cores);
    plan->cpuset = plan->nodeset = plan->cores = NULL;
}

/* The units cores are counted in: Core objects, or PUs where a topology
 * has no cores (some synthetic ones). */
static hwloc_obj_type_t core_type(hwloc_topology_t topo)
{
    return hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

/* Block `index` of `parts` over `n` items: [*first, *first + *len). With
 * more parts than items, each part takes one (shared) item. */
static void split_block(int64_t n, int64_t parts, int64_t index, int64_t *first, int64_t *len,
                        int *shared)
{
    if (parts <= n) {
        *first = index * n / parts;
        *len = (index + 1) * n / parts - *first;
        *shared = 0;
    } else {
        *first = index * n / parts;
        *len = 1;
        *shared = 1;
    }
}

/* Takes block `index` of `parts` among the cores inside `domain` (logical
 * order) and records it in the plan. */
static tsr_status take_cores(hwloc_topology_t topo, hwloc_const_cpuset_t domain, int index,
                             int parts, tsr_bind_plan *plan)
{
    hwloc_obj_type_t type = core_type(topo);
    int total = hwloc_get_nbobjs_by_type(topo, type);
    int64_t in_domain = 0;
    for (int i = 0; i < total; i++) {
        hwloc_obj_t c = hwloc_get_obj_by_type(topo, type, (unsigned)i);
        if (hwloc_bitmap_isincluded(c->cpuset, domain) && !hwloc_bitmap_iszero(c->cpuset))
            in_domain++;
    }
    if (in_domain == 0)
        return tsr_error_set(TSR_ERR_INTERNAL, "no core lies in the locality of the device");
    int64_t first = 0, len = 0;
    split_block(in_domain, parts, index, &first, &len, &plan->shared);
    int64_t seen = 0;
    plan->first_core = -1;
    plan->core_count = 0;
    for (int i = 0; i < total; i++) {
        hwloc_obj_t c = hwloc_get_obj_by_type(topo, type, (unsigned)i);
        if (!hwloc_bitmap_isincluded(c->cpuset, domain) || hwloc_bitmap_iszero(c->cpuset))
            continue;
        if (seen >= first && seen < first + len) {
            if (plan->first_core < 0)
                plan->first_core = (int)c->logical_index;
            plan->core_count++;
            hwloc_bitmap_or(plan->cores, plan->cores, c->cpuset);
        }
        seen++;
    }
    return TSR_OK;
}

/* GPU of local rank r among g usable GPUs, or -1. */
static int gpu_of_rank(int r, int ranks, int g)
{
    if (g <= 0)
        return -1;
    return ranks <= g ? r : (int)((int64_t)r * g / ranks);
}

tsr_status tsr_bind_plan_compute(hwloc_topology_t topo, const tsr_bind_request *request,
                                 tsr_bind_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->gpu = -1;
    int r = request->local_rank, ranks = request->local_size;
    if (ranks < 1 || r < 0 || r >= ranks)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "local rank %d of %d is not a valid position on the node", r, ranks);
    plan->cpuset = hwloc_bitmap_alloc();
    plan->nodeset = hwloc_bitmap_alloc();
    plan->cores = hwloc_bitmap_alloc();
    tsr_topo_device *all = calloc(TSR_TOPO_MAX_DEVICES, sizeof *all);
    tsr_topo_device *usable = calloc(TSR_TOPO_MAX_DEVICES, sizeof *usable);
    tsr_status st = TSR_OK;
    if (plan->cpuset == NULL || plan->nodeset == NULL || plan->cores == NULL || all == NULL ||
        usable == NULL) {
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory planning the binding");
        goto done;
    }
    int found = 0, g = 0;
    tsr_topo_gpus(topo, all, TSR_TOPO_MAX_DEVICES, &found);
    if (request->visible_gpus == NULL) {
        memcpy(usable, all, (size_t)found * sizeof *all);
        g = found;
    } else {
        for (int i = 0; i < request->visible_gpu_count; i++) {
            int k = request->visible_gpus[i];
            if (k >= 0 && k < found)
                usable[g++] = all[k];
        }
    }
    hwloc_const_cpuset_t machine = hwloc_topology_get_topology_cpuset(topo);
    int gpu = gpu_of_rank(r, ranks, g);
    if (gpu >= 0) {
        /* the ranks whose GPUs share this GPU's locality split its cores */
        hwloc_const_cpuset_t domain = usable[gpu].locality;
        int index = 0, parts = 0;
        for (int other = 0; other < ranks; other++) {
            int og = gpu_of_rank(other, ranks, g);
            if (hwloc_bitmap_isequal(usable[og].locality, domain)) {
                if (other < r)
                    index++;
                parts++;
            }
        }
        st = take_cores(topo, domain, index, parts, plan);
        plan->gpu = gpu;
        memcpy(plan->gpu_busid, usable[gpu].busid, sizeof plan->gpu_busid);
    } else {
        st = take_cores(topo, machine, r, ranks, plan);
    }
    if (st != TSR_OK)
        goto done;
    plan->threads = plan->core_count;
    hwloc_cpuset_to_nodeset(topo, plan->cores, plan->nodeset);
    switch (request->policy) {
    case TSR_BIND_CORE:
        hwloc_bitmap_copy(plan->cpuset, plan->cores);
        break;
    case TSR_BIND_NUMA:
        hwloc_cpuset_from_nodeset(topo, plan->cpuset, plan->nodeset);
        hwloc_bitmap_and(plan->cpuset, plan->cpuset, machine);
        break;
    case TSR_BIND_NONE:
        hwloc_bitmap_copy(plan->cpuset, machine);
        break;
    }
done:
    free(all);
    free(usable);
    if (st != TSR_OK)
        tsr_bind_plan_release(plan);
    return st;
}
