/*
 * comm_create.c - making, splitting and destroying communicators, and what
 * a communicator says about itself (comm.h; the front end's other half is
 * comm.c).
 *
 * A world owns what every group split from it shares (tsr_comm_shared:
 * the backend, the timeout, the bf16 ops, the ring of recent calls); each
 * communicator owns its MPI communicator, world-rank map and arrival
 * window. Creation is collective and bounded where it can be: a split
 * starts with a rendezvous the watchdog watches (tsr_comm_split_rendezvous).
 */
#include "comm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_device.h"
#include "tessera/log.h"

void tsr_comm_options_from_config(const tsr_config *cfg, tsr_comm_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->backend = cfg->backend;
    opts->timeout_seconds = cfg->distributed_timeout_minutes * 60.0;
    opts->name = "world";
    opts->report_dir = cfg->watchdog_dir;
}

/* ---- creation ---------------------------------------------------------- */

static void shared_release(tsr_comm_shared *shared)
{
    if (shared == NULL || --shared->refs > 0)
        return;
    tsr_trace_free(&shared->trace);
    free(shared->stepped);
    tsr_comm_mpi_types_free(shared);
    if (shared->abort_comm != MPI_COMM_NULL)
        MPI_Comm_free(&shared->abort_comm);
    free(shared);
}

/* Fills the MPI half of a new communicator (mpi already set): rank, size,
 * world-rank map and arrival window. Collective over mpi. */
static tsr_status comm_init_mpi_part(tsr_comm *comm, int my_world_rank, const char *name)
{
    MPI_Comm_rank(comm->mpi, &comm->rank);
    MPI_Comm_size(comm->mpi, &comm->size);
    snprintf(comm->name, sizeof comm->name, "%s", name ? name : "group");
    comm->world_ranks = malloc((size_t)comm->size * sizeof(int));
    if (comm->world_ranks == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the rank map of group %s",
                             comm->name);
    if (MPI_Allgather(&my_world_rank, 1, MPI_INT, comm->world_ranks, 1, MPI_INT, comm->mpi) !=
        MPI_SUCCESS)
        return tsr_error_set(TSR_ERR_COMM, "MPI_Allgather of world ranks for group %s failed",
                             comm->name);
    return tsr_watchdog_window_create(comm->mpi, &comm->window);
}

static void comm_free_local(tsr_comm *comm)
{
    while (comm->free_list != NULL) {
        tsr_comm_request *req = comm->free_list;
        comm->free_list = req->next_free;
        if (comm->shared && comm->shared->ops && comm->shared->ops->request_free)
            comm->shared->ops->request_free(req);
        free(req->mpi_reqs);
        free(req->copies);
        free(req);
    }
    free(comm->world_ranks);
    free(comm);
}

/* Gathers what each rank sees (ranks on its node, GPUs on its node) and
 * applies the backend rule. */
static tsr_status decide_backend(MPI_Comm base, tsr_backend_choice choice, int *local_rank,
                                 tsr_comm_backend *out)
{
    MPI_Comm node;
    MPI_Comm_split_type(base, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int local_size = 1;
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    int gpus = 0;
    if (tsr_comm_nccl_built() && choice != TSR_BACKEND_MPI && tsr_cuda_device_count(&gpus) != TSR_OK)
        gpus = 0;
    int world = 1;
    MPI_Comm_size(base, &world);
    int mine[2] = {local_size, gpus};
    int *all = malloc((size_t)world * 2 * sizeof(int));
    int *ranks_on_node = malloc((size_t)world * sizeof(int));
    int *gpus_on_node = malloc((size_t)world * sizeof(int));
    tsr_status st = TSR_OK;
    if (all == NULL || ranks_on_node == NULL || gpus_on_node == NULL) {
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the backend survey");
        goto done;
    }
    MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, base);
    for (int r = 0; r < world; r++) {
        ranks_on_node[r] = all[2 * r];
        gpus_on_node[r] = all[2 * r + 1];
    }
    st = tsr_comm_backend_decide(choice, tsr_comm_nccl_built(), world, ranks_on_node,
                                 gpus_on_node, out);
done:
    free(all);
    free(ranks_on_node);
    free(gpus_on_node);
    return st;
}

tsr_status tsr_comm_create_world(MPI_Comm base, const tsr_comm_options *opts, tsr_comm **out)
{
    *out = NULL;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "tsr_comm_create_world called before MPI_Init; initialise MPI "
                             "first");
    if (!(opts->timeout_seconds > 0.0))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "distributed timeout must be positive (got %g s); set "
                             "--distributed-timeout-minutes to a value above 0",
                             opts->timeout_seconds);
    tsr_comm_shared *shared = calloc(1, sizeof *shared);
    tsr_comm *comm = calloc(1, sizeof *comm);
    if (shared == NULL || comm == NULL) {
        free(shared);
        free(comm);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the world communicator");
    }
    shared->refs = 1;
    shared->abort_comm = MPI_COMM_NULL;
    shared->timeout_seconds = opts->timeout_seconds;
    shared->bf16_type = MPI_DATATYPE_NULL;
    shared->bf16_sum = shared->bf16_max = MPI_OP_NULL;
    comm->shared = shared;
    comm->mpi = MPI_COMM_NULL;
    comm->is_world = true;

    tsr_status st = decide_backend(base, opts->backend, &shared->local_rank, &shared->backend);
    if (st != TSR_OK)
        goto fail;
    shared->ops = shared->backend == TSR_COMM_BACKEND_NCCL ? tsr_comm_nccl_ops : &tsr_comm_mpi_ops;
    MPI_Comm_dup(base, &shared->abort_comm);
    MPI_Comm_dup(base, &comm->mpi);
    st = tsr_comm_mpi_types_create(shared);
    if (st != TSR_OK)
        goto fail;
    int world_rank = 0;
    MPI_Comm_rank(base, &world_rank);
    st = comm_init_mpi_part(comm, world_rank, opts->name ? opts->name : "world");
    if (st == TSR_OK)
        st = tsr_trace_create(comm->mpi, opts->report_dir, &shared->trace);
    if (st != TSR_OK)
        goto fail;
    if (shared->backend == TSR_COMM_BACKEND_NCCL) {
        st = tsr_comm_nccl_init_world(comm);
        if (st != TSR_OK)
            goto fail;
    }
    tsr_log(TSR_LOG_DEBUG, "communicator world: %d ranks, backend %s, timeout %.1f s",
            comm->size, tsr_comm_backend_name(shared->backend), shared->timeout_seconds);
    *out = comm;
    return TSR_OK;
fail:
    tsr_watchdog_window_free(&comm->window);
    if (comm->mpi != MPI_COMM_NULL)
        MPI_Comm_free(&comm->mpi);
    comm->shared = NULL;
    comm_free_local(comm);
    shared_release(shared);
    return st;
}

tsr_status tsr_comm_split_at(tsr_call_site site, tsr_comm *parent, int color, int key,
                             const char *name, tsr_comm **out)
{
    *out = NULL;
    if (parent == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "tsr_comm_split: parent is NULL");
    tsr_status st = tsr_comm_split_rendezvous(parent, site);
    if (st != TSR_OK)
        return st;
    MPI_Comm child_mpi = MPI_COMM_NULL;
    int mpi_color = color < 0 ? MPI_UNDEFINED : color;
    if (MPI_Comm_split(parent->mpi, mpi_color, key, &child_mpi) != MPI_SUCCESS)
        return tsr_error_set(TSR_ERR_COMM, "MPI_Comm_split of group %s failed", parent->name);
    if (child_mpi == MPI_COMM_NULL) {
        /* still take part in the backend's (collective) split */
        return parent->shared->ops->split(parent, NULL, color, key);
    }
    tsr_comm *child = calloc(1, sizeof *child);
    if (child == NULL) {
        MPI_Comm_free(&child_mpi);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate group %s", name);
    }
    child->shared = parent->shared;
    child->shared->refs++;
    child->mpi = child_mpi;
    st = comm_init_mpi_part(child, parent->world_ranks[parent->rank], name);
    if (st == TSR_OK)
        st = parent->shared->ops->split(parent, child, color, key);
    if (st != TSR_OK) {
        tsr_watchdog_window_free(&child->window);
        MPI_Comm_free(&child->mpi);
        tsr_comm_shared *shared = child->shared;
        child->shared = NULL;
        comm_free_local(child);
        shared_release(shared);
        return st;
    }
    *out = child;
    return TSR_OK;
}

void tsr_comm_destroy(tsr_comm *comm)
{
    if (comm == NULL)
        return;
    tsr_comm_shared *shared = comm->shared;
    if (shared->ops->destroy)
        shared->ops->destroy(comm);
    /* the ring's window spans the world: freed with it, collectively;
     * groups destroyed later record nothing more */
    if (comm->is_world)
        tsr_trace_free(&shared->trace);
    tsr_watchdog_window_free(&comm->window);
    MPI_Comm_free(&comm->mpi);
    comm_free_local(comm);
    shared_release(shared);
}

int tsr_comm_rank(const tsr_comm *comm)
{
    return comm->rank;
}

int tsr_comm_size(const tsr_comm *comm)
{
    return comm->size;
}

const char *tsr_comm_name(const tsr_comm *comm)
{
    return comm->name;
}

int tsr_comm_world_rank_of(const tsr_comm *comm, int group_rank)
{
    if (group_rank < 0 || group_rank >= comm->size)
        return -1;
    return comm->world_ranks[group_rank];
}

tsr_comm_backend tsr_comm_backend_of(const tsr_comm *comm)
{
    return comm->shared->backend;
}

double tsr_comm_timeout_seconds(const tsr_comm *comm)
{
    return comm->shared->timeout_seconds;
}

MPI_Comm tsr_comm_mpi_handle(const tsr_comm *comm)
{
    return comm->mpi;
}
