/*
 * topo_report.c - the machine and binding-plan report of `tessera topo`
 * (topo_report.h).
 */
#include "topo_report.h"

#include <inttypes.h>
#include <stdlib.h>

#include "bind_plan.h"
#include "topo_devices.h"

/* Logical indexes of the cores inside cpuset, as a list ("0-3,8"). */
static void core_list(hwloc_topology_t topo, hwloc_const_cpuset_t cpuset, char *buf, size_t size)
{
    hwloc_obj_type_t type =
        hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    hwloc_bitmap_t ids = hwloc_bitmap_alloc();
    if (ids == NULL) {
        snprintf(buf, size, "?");
        return;
    }
    hwloc_obj_t c = NULL;
    while ((c = hwloc_get_next_obj_inside_cpuset_by_type(topo, cpuset, type, c)) != NULL)
        hwloc_bitmap_set(ids, c->logical_index);
    if (hwloc_bitmap_iszero(ids))
        snprintf(buf, size, "-");
    else
        hwloc_bitmap_list_snprintf(buf, size, ids);
    hwloc_bitmap_free(ids);
}

static void print_devices(const char *what, const tsr_topo_device *d, int n, FILE *out)
{
    for (int i = 0; i < n; i++) {
        char cpus[256];
        hwloc_bitmap_list_snprintf(cpus, sizeof cpus, d[i].locality);
        fprintf(out, "  %s %d: ", what, i);
        if (d[i].busid[0] != '\0')
            fprintf(out, "pci %s [%04x:%04x] class %04x", d[i].busid, d[i].vendor, d[i].device,
                    d[i].pci_class);
        else
            fprintf(out, "no pci");
        if (d[i].name[0] != '\0')
            fprintf(out, " %s", d[i].name);
        fprintf(out, " near numa %s (cpus %s)\n", d[i].numa, cpus);
    }
}

tsr_status tsr_topo_report_machine(hwloc_topology_t topo, FILE *out)
{
    tsr_topo_device *devs = calloc(TSR_TOPO_MAX_DEVICES, sizeof *devs);
    if (devs == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory listing devices");
    int gpus = 0, nics = 0;
    tsr_topo_gpus(topo, devs, TSR_TOPO_MAX_DEVICES, &gpus);
    tsr_topo_device *nic = calloc(TSR_TOPO_MAX_DEVICES, sizeof *nic);
    if (nic == NULL) {
        free(devs);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory listing devices");
    }
    tsr_topo_nics(topo, nic, TSR_TOPO_MAX_DEVICES, &nics);
    int packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    int numas = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    fprintf(out,
            "machine: %d package(s), %d NUMA node(s), %d core(s), %d PU(s), %d GPU(s), "
            "%d NIC(s)\n",
            packages, numas, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU), gpus, nics);
    char cores[256], cpus[256];
    for (int i = 0; i < packages; i++) {
        hwloc_obj_t p = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, (unsigned)i);
        core_list(topo, p->cpuset, cores, sizeof cores);
        hwloc_bitmap_list_snprintf(cpus, sizeof cpus, p->cpuset);
        fprintf(out, "  package %d: cores %s cpus %s\n", i, cores, cpus);
    }
    for (int i = 0; i < numas; i++) {
        hwloc_obj_t n = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
        core_list(topo, n->cpuset, cores, sizeof cores);
        hwloc_bitmap_list_snprintf(cpus, sizeof cpus, n->cpuset);
        fprintf(out, "  numa %u: cores %s cpus %s memory %" PRIu64 " MiB\n", n->os_index, cores,
                cpus, (uint64_t)(n->attr->numanode.local_memory >> 20));
    }
    print_devices("gpu", devs, gpus, out);
    print_devices("nic", nic, nics, out);
    free(devs);
    free(nic);
    return TSR_OK;
}

tsr_status tsr_topo_report_plan(hwloc_topology_t topo, int ranks_per_node, tsr_bind_policy policy,
                                FILE *out)
{
    fprintf(out, "plan: %d rank(s) per node, --bind %s\n", ranks_per_node,
            tsr_bind_policy_name(policy));
    for (int r = 0; r < ranks_per_node; r++) {
        tsr_bind_request req = {r, ranks_per_node, policy, NULL, 0};
        tsr_bind_plan plan;
        tsr_status st = tsr_bind_plan_compute(topo, &req, &plan);
        if (st != TSR_OK)
            return st;
        char cores[256], cpus[256], numa[64], gpu[40];
        core_list(topo, plan.cores, cores, sizeof cores);
        hwloc_bitmap_list_snprintf(cpus, sizeof cpus, plan.cpuset);
        hwloc_bitmap_list_snprintf(numa, sizeof numa, plan.nodeset);
        if (plan.gpu < 0)
            snprintf(gpu, sizeof gpu, "none");
        else
            snprintf(gpu, sizeof gpu, "%d@%s", plan.gpu,
                     plan.gpu_busid[0] ? plan.gpu_busid : "-");
        fprintf(out, "  local rank %d: cores %s%s cpus %s numa %s gpu %s threads %d\n", r, cores,
                plan.shared ? "(shared)" : "", cpus, numa, gpu, plan.threads);
        tsr_bind_plan_release(&plan);
    }
    return TSR_OK;
}
