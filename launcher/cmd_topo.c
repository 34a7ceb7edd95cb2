/*
 * cmd_topo.c - `tessera topo`: the machine as hwloc sees it.
 *
 * Reads the topology of this machine, of an XML file (--topology) or of a
 * synthetic description (--synthetic), so reports can be checked on
 * topologies other than the one the test runs on.
 */
#include <hwloc.h>
#include <stddef.h>
#include <stdio.h>

#include "commands.h"
#include "flags.h"
#include "rank_env.h"

typedef struct topo_args {
    const char *topology_xml;
    const char *synthetic;
    int ranks_per_node;
} topo_args;

static const tsr_flag topo_flags[] = {
    {"--topology", TSR_FLAG_STRING, offsetof(topo_args, topology_xml), 0, 0, NULL, "FILE.xml",
     "read the topology from an hwloc XML file instead of this machine"},
    {"--synthetic", TSR_FLAG_STRING, offsetof(topo_args, synthetic), 0, 0, NULL, "DESC",
     "use a synthetic topology, e.g. \"pack:2 numa:2 core:8 pu:2\""},
    {"--ranks-per-node", TSR_FLAG_INT, offsetof(topo_args, ranks_per_node), 1, 4096, NULL, "N",
     "ranks the binding map is computed for"},
};

static const tsr_flag_table topo_table = {"topo", topo_flags,
                                          sizeof topo_flags / sizeof topo_flags[0]};

static tsr_status load_topology(const topo_args *args, hwloc_topology_t *out)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "hwloc_topology_init failed");
    if (args->topology_xml != NULL && hwloc_topology_set_xml(topo, args->topology_xml) != 0) {
        hwloc_topology_destroy(topo);
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--topology %s could not be read as an hwloc XML topology; "
                             "create one with 'lstopo --of xml FILE.xml'",
                             args->topology_xml);
    }
    if (args->synthetic != NULL && hwloc_topology_set_synthetic(topo, args->synthetic) != 0) {
        hwloc_topology_destroy(topo);
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--synthetic \"%s\" is not a valid hwloc synthetic description; "
                             "example: \"pack:2 numa:2 core:8 pu:2\"",
                             args->synthetic);
    }
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return tsr_error_set(TSR_ERR_IO, "hwloc could not load the topology");
    }
    *out = topo;
    return TSR_OK;
}

int tsr_cmd_topo(int argc, char **argv)
{
    int rank = tsr_rank_info_from_env().rank;
    if (tsr_args_want_help(argc, argv)) {
        topo_args defaults = {NULL, NULL, 1};
        puts("usage: tessera topo [flags]\n\nprints the machine topology\n\nflags:");
        tsr_flags_print_help(&topo_table, &defaults, stdout);
        return 0;
    }
    topo_args args = {NULL, NULL, 1};
    tsr_status st = tsr_flags_parse(&topo_table, &args, argc, argv, NULL);
    if (st == TSR_OK && args.topology_xml != NULL && args.synthetic != NULL)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--topology and --synthetic are alternatives; give one of them");
    if (st != TSR_OK)
        return tsr_report_error_once(rank, "topo", st);
    hwloc_topology_t topo = NULL;
    st = load_topology(&args, &topo);
    if (st != TSR_OK)
        return tsr_report_error_once(rank, "topo", st);
    printf("machine: %d package(s), %d NUMA node(s), %d core(s), %d PU(s)\n",
           hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE),
           hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE),
           hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE),
           hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU));
    hwloc_topology_destroy(topo);
    return 0;
}
