/*
 * topo_synthetic.h - bounds on the object counts of an hwloc synthetic
 * topology description (`tessera topo --synthetic`).
 *
 * hwloc accepts any count up to UINT_MAX per level and builds every object
 * it describes, so "pack:2 numa:100 core:100 pu:10" runs for minutes and
 * takes gigabytes. The counts are read here the way hwloc reads them and
 * held to limits that cover every real machine; hwloc still judges the
 * rest of the syntax.
 *
 * Callers: topo_load.c, the tests.
 */
#ifndef TSR_LAUNCHER_TOPO_SYNTHETIC_H
#define TSR_LAUNCHER_TOPO_SYNTHETIC_H

#include "tessera/status.h"

/* The most processing units (the product of all counts) a synthetic
 * machine may have: 16x the largest single-image machines sold today,
 * and loaded by hwloc in about a second. */
#define TSR_TOPO_SYNTHETIC_MAX_PUS 16384

/* TSR_ERR_INVALID_ARG, naming the level, if a count of `desc` is zero,
 * negative, or makes the machine larger than TSR_TOPO_SYNTHETIC_MAX_PUS. */
tsr_status tsr_topo_synthetic_check(const char *desc);

#endif /* TSR_LAUNCHER_TOPO_SYNTHETIC_H */
