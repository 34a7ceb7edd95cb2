/*
 * rank_env.c - rank discovery from launcher environment variables, and the
 * node index computed through MPI once it is initialised (see rank_env.h).
 */
#include "rank_env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Returns the variable as a non-negative int, or -1 if unset or garbled. */
static int env_int(const char *name)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > 1 << 30)
        return -1;
    return (int)v;
}

/* Parses a non-negative decimal at *p, advancing it; -1 if none. */
static long parse_count(const char **p)
{
    if (**p < '0' || **p > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    long v = strtol(*p, &end, 10);
    if (errno != 0 || v > 1 << 30)
        return -1;
    *p = end;
    return v;
}

int tsr_rank_slurm_tasks_on_node(const char *tasks_per_node, int node_index)
{
    if (tasks_per_node == NULL || node_index < 0)
        return -1;
    const char *p = tasks_per_node;
    long node = 0;
    while (*p != '\0') {
        long tasks = parse_count(&p);
        if (tasks < 0)
            return -1;
        long repeat = 1;
        if (*p == '(') {
            if (p[1] != 'x')
                return -1;
            p += 2;
            repeat = parse_count(&p);
            if (repeat <= 0 || *p != ')')
                return -1;
            p++;
        }
        if (node_index < node + repeat)
            return (int)tasks;
        node += repeat;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -1;
    }
    return -1;
}

tsr_rank_info tsr_rank_info_from_env(void)
{
    tsr_rank_info info = {0, 1, 0, 1, 0, 1, TSR_RANK_FROM_SINGLE};
    int rank = env_int("OMPI_COMM_WORLD_RANK"), size = env_int("OMPI_COMM_WORLD_SIZE");
    if (rank >= 0 && size > 0) {
        info.rank = rank;
        info.world_size = size;
        info.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
        info.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
        /* mpirun exports no node index; resolved after MPI_Init */
        info.node_index = -1;
        info.node_count = -1;
        info.source = TSR_RANK_FROM_OMPI;
    } else if ((rank = env_int("PMIX_RANK")) >= 0 && (size = env_int("PMI_SIZE")) > 0) {
        info.rank = rank;
        info.world_size = size;
        info.local_rank = env_int("PMI_LOCAL_RANK");
        info.local_size = env_int("PMI_LOCAL_SIZE");
        info.node_index = -1;
        info.node_count = -1;
        info.source = TSR_RANK_FROM_PMIX;
    } else if ((rank = env_int("SLURM_PROCID")) >= 0 && (size = env_int("SLURM_NTASKS")) > 0 &&
               env_int("SLURM_STEP_ID") >= 0) {
        /* SLURM_STEP_ID distinguishes an srun step from the batch script
         * itself, where SLURM_PROCID=0 but this process is not a task */
        info.rank = rank;
        info.world_size = size;
        info.local_rank = env_int("SLURM_LOCALID");
        info.node_index = env_int("SLURM_NODEID");
        info.node_count = env_int("SLURM_STEP_NUM_NODES");
        if (info.node_count <= 0)
            info.node_count = env_int("SLURM_NNODES");
        info.local_size =
            tsr_rank_slurm_tasks_on_node(getenv("SLURM_STEP_TASKS_PER_NODE"), info.node_index);
        if (info.local_size <= 0)
            info.local_size =
                tsr_rank_slurm_tasks_on_node(getenv("SLURM_TASKS_PER_NODE"), info.node_index);
        if (info.local_size <= 0)
            info.local_size = env_int("SLURM_NTASKS_PER_NODE");
        info.source = TSR_RANK_FROM_SLURM;
    }
    if (info.local_rank < 0)
        info.local_rank = 0;
    if (info.local_size <= 0)
        info.local_size = 1;
    if (info.local_rank >= info.local_size)
        info.local_size = info.local_rank + 1;
    if (info.node_index >= 0 && info.node_count <= info.node_index)
        info.node_count = info.node_index + 1;
    return info;
}

tsr_status tsr_rank_info_resolve_node(tsr_rank_info *info, MPI_Comm comm)
{
    int rank = 0;
    MPI_Comm node_comm = MPI_COMM_NULL, leaders = MPI_COMM_NULL;
    tsr_status st = TSR_OK;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS ||
        MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node_comm) !=
            MPI_SUCCESS)
        return tsr_error_set(TSR_ERR_COMM, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed");
    int local_rank = 0;
    MPI_Comm_rank(node_comm, &local_rank);
    /* one leader per node (its lowest rank); the leaders' ranks among
     * themselves number the nodes in order of their lowest rank */
    int is_leader = local_rank == 0;
    if (MPI_Comm_split(comm, is_leader ? 0 : MPI_UNDEFINED, rank, &leaders) != MPI_SUCCESS) {
        st = tsr_error_set(TSR_ERR_COMM, "MPI_Comm_split of the node leaders failed");
        goto done;
    }
    int node[2] = {0, 0}; /* index, count */
    if (is_leader) {
        MPI_Comm_rank(leaders, &node[0]);
        MPI_Comm_size(leaders, &node[1]);
    }
    if (MPI_Bcast(node, 2, MPI_INT, 0, node_comm) != MPI_SUCCESS) {
        st = tsr_error_set(TSR_ERR_COMM, "MPI_Bcast of the node index failed");
        goto done;
    }
    /* the launcher's own numbers (SLURM_NODEID, local rank) win: they are
     * what the binding was computed from before MPI_Init */
    if (info->node_index < 0 || info->node_count <= 0) {
        info->node_index = node[0];
        info->node_count = node[1];
    }
done:
    if (leaders != MPI_COMM_NULL)
        MPI_Comm_free(&leaders);
    MPI_Comm_free(&node_comm);
    return st;
}

const char *tsr_rank_source_name(tsr_rank_source source)
{
    switch (source) {
    case TSR_RANK_FROM_OMPI:
        return "mpirun";
    case TSR_RANK_FROM_PMIX:
        return "pmix";
    case TSR_RANK_FROM_SLURM:
        return "srun";
    case TSR_RANK_FROM_SINGLE:
        break;
    }
    return "single process";
}
