/*
 * nccl.c - the NCCL backend: device memory, one CUDA stream per group.
 *
 * Compiled whenever CMake finds CUDA and NCCL, GPU or not; it runs only when
 * tsr_comm_backend_decide() picked NCCL, i.e. every rank has a GPU of its
 * own (the one numbered by its node-local rank). Each operation is enqueued
 * on the group's stream after the user stream's earlier work (an event), and
 * an event recorded after it is what tsr_comm_test() polls: the front end's
 * bounded wait therefore covers NCCL too, and on timeout the watchdog aborts
 * the NCCL communicator (ncclCommAbort) before ending the job, so no kernel
 * is left spinning on a dead peer. Set-up (unique id, split bookkeeping)
 * and the watchdog's arrival window use the group's MPI communicator.
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"

typedef struct nccl_state {
    ncclComm_t nccl;
    cudaStream_t stream;      /* where this group's operations run */
    cudaStream_t user_stream; /* ordered before and after them; NULL = legacy default */
    cudaEvent_t ready;
    int32_t *barrier; /* one device word for the barrier's all-reduce */
} nccl_state;

static tsr_status cuda_check(cudaError_t err, const char *what, const tsr_comm *comm)
{
    if (err == cudaSuccess)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_COMM, "%s on group %s: %s", what, comm->name,
                         cudaGetErrorString(err));
}

static tsr_status nccl_check(ncclResult_t res, const char *what, const tsr_comm *comm)
{
    if (res == ncclSuccess)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_COMM, "%s on group %s: %s (%s)", what, comm->name,
                         ncclGetErrorString(res), ncclGetLastError(NULL));
}

static ncclDataType_t nccl_type(tsr_comm_dtype dtype)
{
    switch (dtype) {
    case TSR_COMM_BF16:
        return ncclBfloat16;
    case TSR_COMM_INT32:
        return ncclInt32;
    case TSR_COMM_INT64:
        return ncclInt64;
    case TSR_COMM_FP64:
        return ncclFloat64;
    default:
        return ncclFloat32;
    }
}

static ncclRedOp_t nccl_op(tsr_comm_op op)
{
    return op == TSR_COMM_MAX ? ncclMax : ncclSum;
}

/* Stream, event and barrier word of a new group (comm->backend holds nccl). */
static tsr_status state_finish(tsr_comm *comm, nccl_state *s)
{
    tsr_status st = cuda_check(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking),
                               "cudaStreamCreate", comm);
    if (st == TSR_OK)
        st = cuda_check(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming),
                        "cudaEventCreate", comm);
    if (st == TSR_OK)
        st = cuda_check(cudaMalloc((void **)&s->barrier, sizeof(int32_t)), "cudaMalloc", comm);
    if (st == TSR_OK)
        st = cuda_check(cudaMemset(s->barrier, 0, sizeof(int32_t)), "cudaMemset", comm);
    return st;
}

tsr_status tsr_comm_nccl_init_world(tsr_comm *world)
{
    tsr_status st = cuda_check(cudaSetDevice(world->shared->local_rank), "cudaSetDevice", world);
    if (st != TSR_OK)
        return st;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (world->rank == 0) {
        st = nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId", world);
        if (st != TSR_OK)
            return st; /* the others fail in ncclCommInitRank with a bad id */
    }
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, world->mpi);
    nccl_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the NCCL state");
    world->backend = s;
    st = nccl_check(ncclCommInitRank(&s->nccl, world->size, id, world->rank),
                    "ncclCommInitRank", world);
    if (st == TSR_OK)
        st = state_finish(world, s);
    return st;
}

static tsr_status nccl_split(tsr_comm *parent, tsr_comm *child, int color, int key)
{
    nccl_state *ps = parent->backend;
    ncclComm_t out = NULL;
    tsr_status st = nccl_check(ncclCommSplit(ps->nccl, child ? color : NCCL_SPLIT_NOCOLOR, key,
                                             &out, NULL),
                               "ncclCommSplit", parent);
    if (st != TSR_OK || child == NULL)
        return st;
    nccl_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        ncclCommDestroy(out);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the NCCL state");
    }
    s->nccl = out;
    s->user_stream = ps->user_stream;
    child->backend = s;
    return state_finish(child, s);
}

static void nccl_destroy(tsr_comm *comm)
{
    nccl_state *s = comm->backend;
    if (s == NULL)
        return;
    if (s->stream)
        cudaStreamSynchronize(s->stream);
    if (s->nccl)
        ncclCommDestroy(s->nccl);
    if (s->ready)
        cudaEventDestroy(s->ready);
    if (s->stream)
        cudaStreamDestroy(s->stream);
    cudaFree(s->barrier);
    free(s);
    comm->backend = NULL;
}

static void nccl_abort(tsr_comm *comm)
{
    nccl_state *s = comm->backend;
    if (s != NULL && s->nccl != NULL)
        ncclCommAbort(s->nccl);
}

static void nccl_request_free(tsr_comm_request *req)
{
    if (req->event != NULL)
        cudaEventDestroy((cudaEvent_t)req->event);
    req->event = NULL;
}

/* Displacement of element `d` of a buffer, in bytes. */
static char *at(const void *buf, size_t d, size_t es)
{
    return (char *)buf + d * es;
}

static tsr_status enqueue(tsr_comm *comm, const tsr_comm_args *a, nccl_state *s)
{
    ncclComm_t nc = s->nccl;
    cudaStream_t st = s->stream;
    size_t n = a->count, es = tsr_comm_dtype_size(a->dtype);
    ncclDataType_t t = nccl_type(a->dtype);
    const char *what = tsr_comm_kind_name(a->kind);
    if (a->p2p != NULL) {
        ncclGroupStart();
        for (size_t i = 0; i < a->n_p2p; i++) {
            const tsr_comm_p2p *op = &a->p2p[i];
            ncclResult_t r = op->is_send ? ncclSend(op->buf, op->count, nccl_type(op->dtype),
                                                    op->peer, nc, st)
                                         : ncclRecv(op->buf, op->count, nccl_type(op->dtype),
                                                    op->peer, nc, st);
            if (r != ncclSuccess) {
                ncclGroupEnd();
                return nccl_check(r, "batched send/recv", comm);
            }
        }
        return nccl_check(ncclGroupEnd(), "batched send/recv", comm);
    }
    switch (a->kind) {
    case TSR_COMM_KIND_ALLREDUCE:
        return nccl_check(ncclAllReduce(a->sendbuf, a->recvbuf, n, t, nccl_op(a->op), nc, st),
                          what, comm);
    case TSR_COMM_KIND_REDUCE_SCATTER:
        return nccl_check(
            ncclReduceScatter(a->sendbuf, a->recvbuf, n, t, nccl_op(a->op), nc, st), what, comm);
    case TSR_COMM_KIND_ALLGATHER:
        return nccl_check(ncclAllGather(a->sendbuf, a->recvbuf, n, t, nc, st), what, comm);
    case TSR_COMM_KIND_BROADCAST:
        return nccl_check(ncclBroadcast(a->sendbuf, a->recvbuf, n, t, a->root, nc, st), what,
                          comm);
    case TSR_COMM_KIND_REDUCE:
        return nccl_check(
            ncclReduce(a->sendbuf, a->recvbuf, n, t, nccl_op(a->op), a->root, nc, st), what,
            comm);
    case TSR_COMM_KIND_ALLTOALL:
    case TSR_COMM_KIND_ALLTOALLV: {
        bool v = a->kind == TSR_COMM_KIND_ALLTOALLV;
        ncclGroupStart();
        for (int p = 0; p < comm->size; p++) {
            size_t sc = v ? a->sendcounts[p] : n, rc = v ? a->recvcounts[p] : n;
            size_t sd = v ? a->sdispls[p] : (size_t)p * n, rd = v ? a->rdispls[p] : (size_t)p * n;
            ncclResult_t r = ncclSend(at(a->sendbuf, sd, es), sc, t, p, nc, st);
            if (r == ncclSuccess)
                r = ncclRecv(at(a->recvbuf, rd, es), rc, t, p, nc, st);
            if (r != ncclSuccess) {
                ncclGroupEnd();
                return nccl_check(r, what, comm);
            }
        }
        return nccl_check(ncclGroupEnd(), what, comm);
    }
    case TSR_COMM_KIND_SEND:
        return nccl_check(ncclSend(a->sendbuf, n, t, a->root, nc, st), what, comm);
    case TSR_COMM_KIND_RECV:
        return nccl_check(ncclRecv(a->recvbuf, n, t, a->root, nc, st), what, comm);
    case TSR_COMM_KIND_BARRIER:
        return nccl_check(ncclAllReduce(s->barrier, s->barrier, 1, ncclInt32, ncclSum, nc, st),
                          what, comm);
    default:
        return tsr_error_set(TSR_ERR_INTERNAL, "NCCL backend: unknown operation %d",
                             (int)a->kind);
    }
}

static tsr_status nccl_start(tsr_comm *comm, const tsr_comm_args *a, tsr_comm_request *req)
{
    nccl_state *s = comm->backend;
    if (req->event == NULL) {
        cudaEvent_t ev;
        tsr_status st = cuda_check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming),
                                   "cudaEventCreate", comm);
        if (st != TSR_OK)
            return st;
        req->event = ev;
    }
    tsr_status st = cuda_check(cudaEventRecord(s->ready, s->user_stream), "cudaEventRecord", comm);
    if (st == TSR_OK)
        st = cuda_check(cudaStreamWaitEvent(s->stream, s->ready, 0), "cudaStreamWaitEvent", comm);
    if (st == TSR_OK)
        st = enqueue(comm, a, s);
    if (st == TSR_OK)
        st = cuda_check(cudaEventRecord((cudaEvent_t)req->event, s->stream), "cudaEventRecord",
                        comm);
    return st;
}

static tsr_status nccl_test(tsr_comm_request *req, bool *done)
{
    tsr_comm *comm = req->comm;
    nccl_state *s = comm->backend;
    *done = false;
    cudaError_t err = cudaEventQuery((cudaEvent_t)req->event);
    if (err == cudaSuccess) {
        *done = true;
        return cuda_check(cudaStreamWaitEvent(s->user_stream, (cudaEvent_t)req->event, 0),
                          "cudaStreamWaitEvent", comm);
    }
    if (err != cudaErrorNotReady)
        return cuda_check(err, "cudaEventQuery", comm);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(s->nccl, &async);
    if (async != ncclSuccess && async != ncclInProgress)
        return nccl_check(async, tsr_comm_kind_name(req->kind), comm);
    return TSR_OK;
}

void tsr_comm_set_stream(tsr_comm *comm, void *cuda_stream)
{
    if (comm == NULL || comm->shared->backend != TSR_COMM_BACKEND_NCCL || comm->backend == NULL)
        return;
    ((nccl_state *)comm->backend)->user_stream = (cudaStream_t)cuda_stream;
}

bool tsr_comm_nccl_built(void)
{
    return true;
}

static const tsr_comm_backend_ops nccl_ops = {
    .start = nccl_start,
    .test = nccl_test,
    .request_free = nccl_request_free,
    .split = nccl_split,
    .destroy = nccl_destroy,
    .abort = nccl_abort,
};

const tsr_comm_backend_ops *const tsr_comm_nccl_ops = &nccl_ops;
