/*
 * topo_devices.h - the GPUs and NICs of a topology, with their locality.
 *
 * A GPU is an NVIDIA PCI device (vendor 0x10de) of class 0x0300 (VGA) or
 * 0x0302 (3D controller), or any PCI device that carries a CUDA or NVML OS
 * device, or such an OS device with no PCI parent. GPUs are listed in PCI
 * bus id order, the order CUDA uses under CUDA_DEVICE_ORDER=PCI_BUS_ID and
 * the order nvidia-smi and Slurm's NVML GRES number them in.
 *
 * A device's locality is the cpuset of its closest non-I/O ancestor (the
 * package, group or machine its PCI host bridge hangs from) and the NUMA
 * nodes of that cpuset.
 *
 * Callers: bind_plan.c (GPU placement), topo_report.c (the machine report).
 */
#ifndef TSR_LAUNCHER_TOPO_DEVICES_H
#define TSR_LAUNCHER_TOPO_DEVICES_H

#include <hwloc.h>

#include "tessera/status.h"

#define TSR_TOPO_MAX_DEVICES 64

typedef struct tsr_topo_device {
    hwloc_obj_t obj;         /* the PCI device, or the OS device if it has no PCI parent */
    char busid[20];          /* "0000:07:00.0", "" without PCI */
    char name[32];           /* OS device names, e.g. "cuda0" or "mlx5_0,ib0"; "" if none */
    unsigned vendor, device; /* PCI ids; 0 without PCI */
    unsigned pci_class;      /* e.g. 0x0302; 0 without PCI */
    hwloc_const_cpuset_t locality; /* borrowed from the topology */
    int numa_first;          /* os index of its first local NUMA node, -1 if none */
    char numa[32];           /* os indexes of its local NUMA nodes, e.g. "1" or "0-1" */
} tsr_topo_device;

/* GPUs in PCI bus id order; *count <= max. */
tsr_status tsr_topo_gpus(hwloc_topology_t topo, tsr_topo_device *out, int max, int *count);

/* Network devices (PCI class 0x02xx, or network/OpenFabrics OS devices) in
 * PCI bus id order; *count <= max. */
tsr_status tsr_topo_nics(hwloc_topology_t topo, tsr_topo_device *out, int max, int *count);

/* NUMA nodes local to a cpuset: those with exactly that locality, else
 * those inside it, else those containing it. Fills a nodeset (caller owns). */
void tsr_topo_local_numa(hwloc_topology_t topo, hwloc_const_cpuset_t cpuset,
                         hwloc_nodeset_t nodeset);

#endif /* TSR_LAUNCHER_TOPO_DEVICES_H */
