/*
 * topo_load.h - loads an hwloc topology: this machine, an XML file or a
 * synthetic description, always with the PCI/OS devices that tessera
 * reports (GPUs, NICs).
 *
 * hwloc drops I/O objects unless the I/O type filter keeps them, for
 * machines and for XML files alike; every topology tessera looks at goes
 * through here so that GPUs are never silently missing.
 *
 * Callers: cmd_topo.c, bind.c, the tests.
 */
#ifndef TSR_LAUNCHER_TOPO_LOAD_H
#define TSR_LAUNCHER_TOPO_LOAD_H

#include <hwloc.h>

#include "tessera/status.h"

/* Loads the topology of `xml_path` if not NULL, else of `synthetic` if not
 * NULL, else of this machine. On success *out is owned by the caller
 * (hwloc_topology_destroy). Only one of xml_path and synthetic may be set. */
tsr_status tsr_topo_load(const char *xml_path, const char *synthetic, hwloc_topology_t *out);

#endif /* TSR_LAUNCHER_TOPO_LOAD_H */
