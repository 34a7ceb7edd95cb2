/*
 * cmd_topo.c - `tessera topo`: the machine as hwloc sees it, and the
 * binding tessera would give each rank on it.
 *
 * Alone, it reads this machine, an XML file (--topology) or a synthetic
 * description (--synthetic) and prints the machine and the plan for
 * --ranks-per-node ranks. Under mpirun or srun (on this machine's
 * topology), every rank also applies its binding exactly as `tessera train`
 * does, reads it back from the OS, and rank 0 prints one "tessera bind:"
 * line per rank in rank order, so a job log shows where each rank really
 * ran and on which node.
 */
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "commands.h"
#include "flags.h"
#include "rank_env.h"
#include "topo_load.h"
#include "topo_report.h"

typedef struct topo_args {
    const char *topology_xml;
    const char *synthetic;
    int ranks_per_node; /* 0: the launcher's local size */
    int bind;           /* tsr_bind_policy */
} topo_args;

static const char *const bind_choices[] = {"core", "numa", "none", NULL};

static const tsr_flag topo_flags[] = {
    {"--topology", TSR_FLAG_STRING, offsetof(topo_args, topology_xml), 0, 0, NULL, "FILE.xml",
     "read the topology from an hwloc XML file instead of this machine"},
    {"--synthetic", TSR_FLAG_STRING, offsetof(topo_args, synthetic), 0, 0, NULL, "DESC",
     "use a synthetic topology, e.g. \"pack:2 numa:2 core:8 pu:2\""},
    {"--ranks-per-node", TSR_FLAG_INT, offsetof(topo_args, ranks_per_node), 0, 4096, NULL, "N",
     "ranks the binding map is computed for (0: as many as the launcher started here)"},
    {"--bind", TSR_FLAG_CHOICE, offsetof(topo_args, bind), 0, 0, bind_choices, "POLICY",
     "binding policy to plan and, under mpirun/srun, apply: core, numa or none"},
};

static const tsr_flag_table topo_table = {"topo", topo_flags,
                                          sizeof topo_flags / sizeof topo_flags[0]};

static int print_report(const topo_args *args, int ranks_per_node)
{
    hwloc_topology_t topo = NULL;
    tsr_status st = tsr_topo_load(args->topology_xml, args->synthetic, &topo);
    if (st == TSR_OK)
        st = tsr_topo_report_machine(topo, stdout);
    if (st == TSR_OK)
        st = tsr_topo_report_plan(topo, ranks_per_node, (tsr_bind_policy)args->bind, stdout);
    if (topo != NULL)
        hwloc_topology_destroy(topo);
    fflush(stdout);
    if (st != TSR_OK)
        return tsr_report_error_once(0, "topo", st);
    return 0;
}

/* Every rank binds itself, then rank 0 prints the machine, the plan and
 * every rank's report line in rank order. */
static int report_ranks(const topo_args *args, tsr_rank_info info)
{
    tsr_binding_report bind;
    char line[TSR_BIND_REPORT_MAX];
    tsr_status st = tsr_bind_apply(&info, (tsr_bind_policy)args->bind, &bind);
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "tessera topo: error: MPI_Init failed on rank %d\n", info.rank);
        return 1;
    }
    tsr_status node_st = tsr_rank_info_resolve_node(&info, MPI_COMM_WORLD);
    if (st == TSR_OK)
        tsr_bind_format_report(&info, &bind, line, sizeof line);
    else
        snprintf(line, sizeof line, "tessera bind: rank=%d/%d error: %s", info.rank,
                 info.world_size, tsr_last_error());
    if (node_st != TSR_OK && st == TSR_OK)
        st = node_st;
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char *all = NULL;
    if (rank == 0) {
        all = malloc((size_t)world * TSR_BIND_REPORT_MAX);
        if (all == NULL) {
            fprintf(stderr, "tessera topo: error: out of memory gathering %d reports\n", world);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Gather(line, TSR_BIND_REPORT_MAX, MPI_CHAR, all, TSR_BIND_REPORT_MAX, MPI_CHAR, 0,
               MPI_COMM_WORLD);
    int failed = st != TSR_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int rc = any_failed ? 1 : 0;
    if (rank == 0) {
        int per_node = args->ranks_per_node > 0 ? args->ranks_per_node : info.local_size;
        rc = print_report(args, per_node) != 0 ? 1 : rc;
        printf("ranks: %d on %d node(s) (%s)\n", world, info.node_count,
               tsr_rank_source_name(info.source));
        for (int r = 0; r < world; r++)
            printf("%s\n", all + (size_t)r * TSR_BIND_REPORT_MAX);
        fflush(stdout);
        free(all);
    }
    MPI_Finalize();
    return rc;
}

int tsr_cmd_topo(int argc, char **argv)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    topo_args args = {NULL, NULL, 0, 0};
    if (tsr_args_want_help(argc, argv)) {
        if (info.rank == 0) {
            puts("usage: tessera topo [flags]\n"
                 "       mpirun -np N tessera topo [flags]\n"
                 "       srun --mpi=pmix tessera topo [flags]\n\n"
                 "prints the machine (packages, NUMA nodes, cores, GPUs, NICs) and the\n"
                 "rank -> cores / NUMA node / GPU map tessera applies; under mpirun or\n"
                 "srun every rank also binds itself and reports the binding it has\n\nflags:");
            tsr_flags_print_help(&topo_table, &args, stdout);
        }
        return 0;
    }
    tsr_status st = tsr_flags_parse(&topo_table, &args, argc, argv, NULL);
    if (st == TSR_OK && args.topology_xml != NULL && args.synthetic != NULL)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--topology and --synthetic are alternatives; give one of them");
    if (st != TSR_OK)
        return tsr_report_error_once(info.rank, "topo", st);
    int elsewhere = args.topology_xml != NULL || args.synthetic != NULL;
    if (info.source != TSR_RANK_FROM_SINGLE && !elsewhere)
        return report_ranks(&args, info);
    if (info.rank != 0)
        return 0;
    return print_report(&args, args.ranks_per_node > 0 ? args.ranks_per_node : info.local_size);
}
