/*
 * topo_report.h - the text of `tessera topo`: the machine (packages, NUMA
 * nodes, cores, GPUs, NICs with their locality) and the rank -> cores /
 * NUMA node / GPU map that bind_plan.h would apply for a number of ranks
 * per node. Writes to any FILE so tests can read it back.
 *
 * Core numbers are hwloc logical indexes (0..C-1 across the machine); PU
 * numbers are OS indexes, the ones taskset, numactl and /proc use.
 *
 * Callers: cmd_topo.c.
 */
#ifndef TSR_LAUNCHER_TOPO_REPORT_H
#define TSR_LAUNCHER_TOPO_REPORT_H

#include <hwloc.h>
#include <stdio.h>

#include "tessera/config.h"
#include "tessera/status.h"

tsr_status tsr_topo_report_machine(hwloc_topology_t topo, FILE *out);

/* One line per local rank:
 *   local rank 0: cores 4-5 cpus 4-5,12-13 numa 1 gpu 0@0000:07:00.0 threads 2 */
tsr_status tsr_topo_report_plan(hwloc_topology_t topo, int ranks_per_node, tsr_bind_policy policy,
                                FILE *out);

#endif /* TSR_LAUNCHER_TOPO_REPORT_H */
