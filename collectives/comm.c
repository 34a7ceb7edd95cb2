/*
 * comm.c - the front end of the communicator API: argument checks, byte
 * counters, the request pool, and bounded waits (creation and splitting
 * are in comm_create.c).
 *
 * Every call is checked here before a backend sees it, so both backends
 * get the same validation and the same messages. Blocking calls are a
 * start followed by tsr_comm_wait(): one code path, and the watchdog bounds
 * it. Waits poll the backend (MPI_Test / cudaEventQuery), yielding the core
 * between polls so that oversubscribed ranks do not starve each other.
 */
#include "comm_internal.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/log.h"
#include "tessera/timer.h"

/* ---- counters ---------------------------------------------------------- */

void tsr_comm_counters_get(const tsr_comm *comm, tsr_comm_counters *out)
{
    *out = comm->counters;
}

void tsr_comm_counters_reset(tsr_comm *comm)
{
    memset(&comm->counters, 0, sizeof comm->counters);
}

/* ---- requests ---------------------------------------------------------- */

static tsr_comm_request *request_get(tsr_comm *comm)
{
    tsr_comm_request *req = comm->free_list;
    if (req != NULL) {
        comm->free_list = req->next_free;
    } else {
        req = calloc(1, sizeof *req);
        if (req == NULL)
            return NULL;
    }
    req->comm = comm;
    req->next_free = NULL;
    req->n_mpi = 0;
    req->n_copies = 0;
    req->move_bytes = 0;
    req->tree = false;
    req->ring = false;
    req->stepped_done = false;
    req->wait_started_ns = 0;
    req->seq = 0;
    req->peer = -1;
    req->n_peers = 0;
    req->trace_serial = 0;
    return req;
}

static void request_put(tsr_comm_request *req)
{
    tsr_comm *comm = req->comm;
    req->next_free = comm->free_list;
    comm->free_list = req;
}

static tsr_status request_test(tsr_comm_request **request, bool *done)
{
    tsr_comm_request *req = *request;
    const tsr_comm_shared *shared = req->comm->shared;
    if (shared->ops->progress != NULL)
        shared->ops->progress(req->comm->shared);
    tsr_status st = shared->ops->test(req, done);
    if (st != TSR_OK || *done) {
        tsr_trace_end(&req->comm->shared->trace, req->trace_serial);
        *request = NULL;
        request_put(req);
    }
    return st;
}

static void check_deadline(tsr_comm_request *req, uint64_t now)
{
    if (req->wait_started_ns == 0) {
        req->wait_started_ns = now;
        return;
    }
    double waited = (double)(now - req->wait_started_ns) * 1e-9;
    if (waited > req->comm->shared->timeout_seconds)
        tsr_comm_watchdog_fire(req);
    /* another rank's watchdog fired: its message needs this rank's ring */
    if (tsr_trace_dump_requested(&req->comm->shared->trace))
        tsr_trace_dump_own(&req->comm->shared->trace);
}

tsr_status tsr_comm_test(tsr_comm_request **request, bool *done)
{
    *done = true;
    if (request == NULL || *request == NULL)
        return TSR_OK;
    check_deadline(*request, tsr_time_ns());
    return request_test(request, done);
}

tsr_status tsr_comm_wait_at(tsr_call_site site, tsr_comm_request **request)
{
    if (request == NULL || *request == NULL)
        return TSR_OK;
    tsr_trace *trace = &(*request)->comm->shared->trace;
    tsr_trace_wait_begin(trace, (*request)->trace_serial, site);
    uint64_t start = tsr_time_ns();
    unsigned spins = 0;
    for (;;) {
        bool done = false;
        uint64_t now = tsr_time_ns();
        check_deadline(*request, now);
        tsr_status st = request_test(request, &done);
        if (st != TSR_OK || done) {
            tsr_trace_wait_end(trace);
            return st;
        }
        /* polling keeps MPI progressing: non-blocking collectives advance
         * only inside MPI_Test, and Open MPI runs their progress callback
         * on every 8th call, so a yield between polls would cost a time
         * slice per round. Only a wait that has lasted 1 ms yields, once
         * per 256 polls, so an oversubscribed core still reaches the rank
         * we are waiting for. */
        if (now - start > 1000000 && ++spins % 256 == 0)
            sched_yield();
    }
}

tsr_status tsr_comm_wait_all_at(tsr_call_site site, tsr_comm_request **requests, size_t n)
{
    /* every one, even after a failure: none is left in flight */
    tsr_status first = TSR_OK;
    for (size_t i = 0; i < n; i++) {
        tsr_status st = tsr_comm_wait_at(site, &requests[i]);
        if (first == TSR_OK)
            first = st;
    }
    return first;
}

/* Every member of parent arrives before the (blocking) split: an
 * MPI_Ibarrier waited on as a collective of its own kind, so a rank that
 * never comes is named like one that misses a collective. */
tsr_status tsr_comm_split_rendezvous(tsr_comm *parent, tsr_call_site site)
{
    tsr_comm_request *req = request_get(parent);
    if (req == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a request on %s",
                             parent->name);
    req->kind = TSR_COMM_KIND_SPLIT;
    req->seq = ++parent->seq;
    tsr_watchdog_publish(&parent->window, req->seq, (int)req->kind);
    tsr_trace *trace = &parent->shared->trace;
    req->trace_serial =
        tsr_trace_begin(trace, parent->name, req->seq, (int)req->kind, -1, 0, site);
    MPI_Request barrier;
    tsr_status st = TSR_OK;
    if (MPI_Ibarrier(parent->mpi, &barrier) != MPI_SUCCESS) {
        st = tsr_error_set(TSR_ERR_COMM, "MPI_Ibarrier before splitting group %s failed",
                           parent->name);
    } else {
        tsr_trace_wait_begin(trace, req->trace_serial, site);
        const tsr_comm_shared *shared = parent->shared;
        for (unsigned spins = 0;; spins++) {
            int flag = 0;
            /* trees and rings still in flight move on while we wait here */
            if (shared->ops->progress != NULL)
                shared->ops->progress(parent->shared);
            MPI_Test(&barrier, &flag, MPI_STATUS_IGNORE);
            if (flag)
                break;
            check_deadline(req, tsr_time_ns());
            if (spins % 256 == 255)
                sched_yield();
        }
        tsr_trace_wait_end(trace);
    }
    tsr_trace_end(trace, req->trace_serial);
    request_put(req);
    return st;
}

/* ---- validation and dispatch -------------------------------------------- */

static tsr_status check_common(const tsr_comm *comm, tsr_comm_kind kind, tsr_comm_dtype dtype,
                               size_t count)
{
    const char *what = tsr_comm_kind_name(kind);
    if (comm == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s: communicator is NULL", what);
    if ((int)dtype < 0 || dtype >= TSR_COMM_DTYPE_COUNT)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s on group %s: unknown dtype %d", what,
                             comm->name, (int)dtype);
    /* MPI counts are int; bigger buffers are split by the caller (buckets) */
    if (count > (size_t)INT_MAX)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s on group %s: count %zu exceeds %d elements; split the buffer "
                             "into smaller buckets",
                             what, comm->name, count, INT_MAX);
    return TSR_OK;
}

static tsr_status check_buf(const tsr_comm *comm, tsr_comm_kind kind, const void *buf,
                            size_t count, const char *which)
{
    if (buf == NULL && count > 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s on group %s: %s is NULL for %zu elements",
                             tsr_comm_kind_name(kind), comm->name, which, count);
    return TSR_OK;
}

static tsr_status check_rank(const tsr_comm *comm, tsr_comm_kind kind, int r, const char *which)
{
    if (r < 0 || r >= comm->size)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s on group %s: %s %d is not a rank of this %d-rank group",
                             tsr_comm_kind_name(kind), comm->name, which, r, comm->size);
    return TSR_OK;
}

static tsr_status check_op(const tsr_comm *comm, tsr_comm_kind kind, tsr_comm_op op)
{
    if ((int)op < 0 || op >= TSR_COMM_OP_COUNT)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s on group %s: unknown op %d",
                             tsr_comm_kind_name(kind), comm->name, (int)op);
    return TSR_OK;
}

/* Starts args; counts it (bytes) and records it in the ring (traced: its
 * payload); completes it at once when request is NULL. */
static tsr_status dispatch(tsr_call_site site, tsr_comm *comm, const tsr_comm_args *args,
                           uint64_t bytes, uint64_t traced, tsr_comm_request **request)
{
    if (request != NULL)
        *request = NULL;
    tsr_comm_request *req = request_get(comm);
    if (req == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a request for %s on %s",
                             tsr_comm_kind_name(args->kind), comm->name);
    req->kind = args->kind;
    req->bytes = bytes;
    bool p2p = args->kind == TSR_COMM_KIND_SEND || args->kind == TSR_COMM_KIND_RECV;
    if (args->p2p != NULL) {
        req->peer = args->p2p[0].peer;
        for (size_t i = 0; i < args->n_p2p && req->n_peers < TSR_COMM_BATCH_PEERS_SHOWN; i++) {
            bool seen = false;
            for (int k = 0; k < req->n_peers; k++)
                seen |= req->peers[k] == args->p2p[i].peer;
            if (!seen)
                req->peers[req->n_peers++] = args->p2p[i].peer;
        }
    } else if (p2p) {
        req->peer = args->root;
    } else {
        req->seq = ++comm->seq;
        tsr_watchdog_publish(&comm->window, req->seq, (int)args->kind);
    }
    req->trace_serial = tsr_trace_begin(&comm->shared->trace, comm->name, req->seq, (int)args->kind,
                                        req->peer, traced, site);
    tsr_status st = comm->shared->ops->start(comm, args, req);
    if (st != TSR_OK) {
        tsr_trace_end(&comm->shared->trace, req->trace_serial);
        request_put(req);
        return st;
    }
    comm->counters.calls[args->kind]++;
    comm->counters.bytes[args->kind] += bytes;
    if (request != NULL) {
        *request = req;
        return TSR_OK;
    }
    return tsr_comm_wait_at(site, &req);
}

tsr_status tsr_comm_allreduce_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                 size_t count, tsr_comm_dtype dtype, tsr_comm_op op, tsr_comm *comm,
                                 tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_ALLREDUCE;
    tsr_status st = check_common(comm, k, dtype, count);
    if (st == TSR_OK)
        st = check_op(comm, k, op);
    if (st == TSR_OK)
        st = check_buf(comm, k, sendbuf, count, "sendbuf");
    if (st == TSR_OK)
        st = check_buf(comm, k, recvbuf, count, "recvbuf");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = count,
                       .dtype = dtype, .op = op};
    uint64_t bytes = (uint64_t)count * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_reduce_scatter_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                      size_t recvcount, tsr_comm_dtype dtype, tsr_comm_op op,
                                      tsr_comm *comm, tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_REDUCE_SCATTER;
    tsr_status st = check_common(comm, k, dtype, recvcount);
    if (st == TSR_OK)
        st = check_common(comm, k, dtype, recvcount * (size_t)comm->size);
    if (st == TSR_OK)
        st = check_op(comm, k, op);
    if (st == TSR_OK)
        st = check_buf(comm, k, sendbuf, recvcount, "sendbuf");
    if (st == TSR_OK)
        st = check_buf(comm, k, recvbuf, recvcount, "recvbuf");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = recvcount,
                       .dtype = dtype, .op = op};
    uint64_t bytes = (uint64_t)recvcount * (uint64_t)comm->size * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_allgather_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                 size_t sendcount, tsr_comm_dtype dtype, tsr_comm *comm,
                                 tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_ALLGATHER;
    tsr_status st = check_common(comm, k, dtype, sendcount);
    if (st == TSR_OK)
        st = check_common(comm, k, dtype, sendcount * (size_t)comm->size);
    if (st == TSR_OK)
        st = check_buf(comm, k, sendbuf, sendcount, "sendbuf");
    if (st == TSR_OK)
        st = check_buf(comm, k, recvbuf, sendcount, "recvbuf");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = sendcount,
                       .dtype = dtype};
    uint64_t bytes = (uint64_t)sendcount * (uint64_t)comm->size * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_broadcast_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                 size_t count, tsr_comm_dtype dtype, int root, tsr_comm *comm,
                                 tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_BROADCAST;
    tsr_status st = check_common(comm, k, dtype, count);
    if (st == TSR_OK)
        st = check_rank(comm, k, root, "root");
    if (st == TSR_OK && comm->rank == root)
        st = check_buf(comm, k, sendbuf, count, "sendbuf (on root)");
    if (st == TSR_OK)
        st = check_buf(comm, k, recvbuf, count, "recvbuf");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = count,
                       .dtype = dtype, .root = root};
    uint64_t bytes = (uint64_t)count * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_reduce_at(tsr_call_site site, const void *sendbuf, void *recvbuf, size_t count,
                              tsr_comm_dtype dtype, tsr_comm_op op, int root, tsr_comm *comm,
                              tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_REDUCE;
    tsr_status st = check_common(comm, k, dtype, count);
    if (st == TSR_OK)
        st = check_op(comm, k, op);
    if (st == TSR_OK)
        st = check_rank(comm, k, root, "root");
    if (st == TSR_OK)
        st = check_buf(comm, k, sendbuf, count, "sendbuf");
    if (st == TSR_OK && comm->rank == root)
        st = check_buf(comm, k, recvbuf, count, "recvbuf (on root)");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = count,
                       .dtype = dtype, .op = op, .root = root};
    uint64_t bytes = (uint64_t)count * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_alltoall_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                size_t count, tsr_comm_dtype dtype, tsr_comm *comm,
                                tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_ALLTOALL;
    tsr_status st = check_common(comm, k, dtype, count);
    if (st == TSR_OK)
        st = check_common(comm, k, dtype, count * (size_t)comm->size);
    if (st == TSR_OK)
        st = check_buf(comm, k, sendbuf, count, "sendbuf");
    if (st == TSR_OK)
        st = check_buf(comm, k, recvbuf, count, "recvbuf");
    if (st == TSR_OK && count > 0 && sendbuf == recvbuf)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "alltoall on group %s: sendbuf and recvbuf are the same buffer; "
                           "use separate buffers",
                           comm->name);
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = count,
                       .dtype = dtype};
    uint64_t bytes = (uint64_t)count * (uint64_t)comm->size * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_alltoallv_at(tsr_call_site site, const void *sendbuf, const size_t *sendcounts,
                                 const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                                 const size_t *rdispls, tsr_comm_dtype dtype, tsr_comm *comm,
                                 tsr_comm_request **request)
{
    const tsr_comm_kind k = TSR_COMM_KIND_ALLTOALLV;
    tsr_status st = check_common(comm, k, dtype, 0);
    if (st != TSR_OK)
        return st;
    if (sendcounts == NULL || sdispls == NULL || recvcounts == NULL || rdispls == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "alltoallv on group %s: counts and displacements must all be "
                             "given (arrays of %d entries)",
                             comm->name, comm->size);
    size_t total_send = 0, total_recv = 0;
    for (int p = 0; p < comm->size; p++) {
        if (sendcounts[p] > (size_t)INT_MAX || sdispls[p] > (size_t)INT_MAX ||
            recvcounts[p] > (size_t)INT_MAX || rdispls[p] > (size_t)INT_MAX)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "alltoallv on group %s: a count or displacement for peer %d "
                                 "exceeds %d elements",
                                 comm->name, p, INT_MAX);
        total_send += sendcounts[p];
        total_recv += recvcounts[p];
    }
    st = check_buf(comm, k, sendbuf, total_send, "sendbuf");
    if (st == TSR_OK)
        st = check_buf(comm, k, recvbuf, total_recv, "recvbuf");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = sendbuf, .recvbuf = recvbuf, .dtype = dtype,
                       .sendcounts = sendcounts, .sdispls = sdispls, .recvcounts = recvcounts,
                       .rdispls = rdispls};
    uint64_t bytes = (uint64_t)total_send * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

static tsr_status p2p_one(tsr_call_site site, tsr_comm_kind k, const void *buf, size_t count,
                          tsr_comm_dtype dtype, int peer, tsr_comm *comm,
                          tsr_comm_request **request)
{
    tsr_status st = check_common(comm, k, dtype, count);
    if (st == TSR_OK)
        st = check_rank(comm, k, peer, "peer");
    if (st == TSR_OK)
        st = check_buf(comm, k, buf, count, "buf");
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = k, .sendbuf = buf, .recvbuf = (void *)buf, .count = count,
                       .dtype = dtype, .root = peer};
    uint64_t bytes = (uint64_t)count * tsr_comm_dtype_size(dtype);
    return dispatch(site, comm, &a, bytes, bytes, request);
}

tsr_status tsr_comm_send_at(tsr_call_site site, const void *buf, size_t count, tsr_comm_dtype dtype,
                            int peer, tsr_comm *comm, tsr_comm_request **request)
{
    return p2p_one(site, TSR_COMM_KIND_SEND, buf, count, dtype, peer, comm, request);
}

tsr_status tsr_comm_recv_at(tsr_call_site site, void *buf, size_t count, tsr_comm_dtype dtype,
                            int peer, tsr_comm *comm, tsr_comm_request **request)
{
    return p2p_one(site, TSR_COMM_KIND_RECV, buf, count, dtype, peer, comm, request);
}

tsr_status tsr_comm_batch_p2p_at(tsr_call_site site, const tsr_comm_p2p *ops, size_t n,
                                 tsr_comm *comm, tsr_comm_request **request)
{
    if (n > 0 && ops == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "batch_p2p: %zu ops but ops is NULL", n);
    if (request != NULL)
        *request = NULL;
    if (n == 0)
        return TSR_OK; /* nothing to wait for: a NULL request is complete */
    if (n > (size_t)INT_MAX / 2)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "batch_p2p: %zu ops is too many", n);
    uint64_t sent = 0, received = 0;
    size_t n_send = 0;
    for (size_t i = 0; i < n; i++) {
        tsr_comm_kind k = ops[i].is_send ? TSR_COMM_KIND_SEND : TSR_COMM_KIND_RECV;
        tsr_status st = check_common(comm, k, ops[i].dtype, ops[i].count);
        if (st == TSR_OK)
            st = check_rank(comm, k, ops[i].peer, "peer");
        if (st == TSR_OK)
            st = check_buf(comm, k, ops[i].buf, ops[i].count, "buf");
        if (st != TSR_OK)
            return st;
        uint64_t b = (uint64_t)ops[i].count * tsr_comm_dtype_size(ops[i].dtype);
        if (ops[i].is_send) {
            sent += b;
            n_send++;
        } else {
            received += b;
        }
    }
    if (comm == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "batch_p2p: communicator is NULL");
    /* counted as its sends and receives, so per-kind totals stay exact */
    tsr_comm_kind kind = n_send > 0 ? TSR_COMM_KIND_SEND : TSR_COMM_KIND_RECV;
    tsr_comm_args a = {.kind = kind, .p2p = ops, .n_p2p = n};
    tsr_status st = dispatch(site, comm, &a, 0, sent + received, request);
    if (st != TSR_OK)
        return st;
    /* dispatch counted one call of `kind` with 0 bytes */
    comm->counters.calls[kind] -= 1;
    comm->counters.calls[TSR_COMM_KIND_SEND] += n_send;
    comm->counters.calls[TSR_COMM_KIND_RECV] += n - n_send;
    comm->counters.bytes[TSR_COMM_KIND_SEND] += sent;
    comm->counters.bytes[TSR_COMM_KIND_RECV] += received;
    return TSR_OK;
}

tsr_status tsr_comm_barrier_at(tsr_call_site site, tsr_comm *comm, tsr_comm_request **request)
{
    tsr_status st = check_common(comm, TSR_COMM_KIND_BARRIER, TSR_COMM_INT32, 0);
    if (st != TSR_OK)
        return st;
    tsr_comm_args a = {.kind = TSR_COMM_KIND_BARRIER, .dtype = TSR_COMM_INT32};
    return dispatch(site, comm, &a, 0, 0, request);
}
