/*
 * rank_env.h - where this process sits in the job: rank, world size, local
 * rank and size, node index and count.
 *
 * tsr_rank_info_from_env() reads the environment that mpirun, PMIx or srun
 * set, before MPI is initialised: knowing rank and world size that early
 * lets the launcher validate a configuration and print one error (from rank
 * 0) without communicating, and knowing the local rank lets it bind the
 * process before anything is allocated.
 *
 * Node identity never comes from gethostname(): containers and emulated
 * Slurm nodes put several "nodes" on one hostname. srun exports
 * SLURM_NODEID; mpirun exports no node index, so under mpirun node_index
 * stays -1 until tsr_rank_info_resolve_node() computes it after MPI_Init
 * from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), which follows Open MPI's
 * own idea of a node (one daemon per node), not the hostname.
 *
 * Callers: main.c and every subcommand (rank for "print once"), bind.c
 * (local rank and size), cmd_topo.c (node index in the report).
 */
#ifndef TSR_LAUNCHER_RANK_ENV_H
#define TSR_LAUNCHER_RANK_ENV_H

#include <mpi.h>

#include "tessera/status.h"

typedef enum tsr_rank_source {
    TSR_RANK_FROM_SINGLE = 0, /* no launcher: one process */
    TSR_RANK_FROM_OMPI,       /* mpirun (Open MPI) */
    TSR_RANK_FROM_PMIX,       /* a PMIx launcher that set PMIX_RANK */
    TSR_RANK_FROM_SLURM       /* srun */
} tsr_rank_source;

typedef struct tsr_rank_info {
    int rank;
    int world_size;
    int local_rank;
    int local_size;
    int node_index; /* 0-based; -1 while unknown (mpirun before MPI_Init) */
    int node_count; /* -1 while unknown */
    tsr_rank_source source;
} tsr_rank_info;

/* Reads the environment in order of trust: Open MPI, then PMIx, then Slurm
 * (under mpirun inside an allocation every rank sees SLURM_PROCID=0, so
 * Slurm's variables only count when no MPI launcher set its own). Under
 * srun the local size comes from SLURM_STEP_TASKS_PER_NODE (e.g. "2(x3),1")
 * for this node, so uneven distributions are right too. A single process
 * is node 0 of 1. */
tsr_rank_info tsr_rank_info_from_env(void);

/* Local tasks on node `node_index` according to a Slurm tasks-per-node
 * string such as "4(x2),3"; -1 if the string is malformed or too short. */
int tsr_rank_slurm_tasks_on_node(const char *tasks_per_node, int node_index);

/* After MPI_Init: fills node_index and node_count when the environment did
 * not (mpirun, PMIx) from MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED).
 * Nodes are numbered in the order of their lowest rank, which is Slurm's
 * node order under block distribution. Values from the environment
 * (SLURM_NODEID, local rank and size) are kept. Collective over comm. */
tsr_status tsr_rank_info_resolve_node(tsr_rank_info *info, MPI_Comm comm);

const char *tsr_rank_source_name(tsr_rank_source source);

#endif /* TSR_LAUNCHER_RANK_ENV_H */
