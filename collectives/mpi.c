/*
 * mpi.c - the MPI backend: every operation is one non-blocking MPI call,
 * or a batch of Isend/Irecv (p2p batches, all-to-all, all-gather of large
 * buffers), or a tree or ring of them (reduce on up to 8 ranks,
 * mpi_reduce.c; all-reduce of large buffers, mpi_ring.c), completed by
 * polling MPI_Test from the front end's bounded wait.
 * Types and bf16's reduction ops: mpi_types.c.
 *
 * Device buffers (CUDA builds) are copied into a pinned host buffer owned by
 * the request, the operation runs out of place on the host copies, and
 * results are copied back when the request completes; in-place calls need
 * no special case there because the host copies are distinct.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "stage.h"

#define TSR_P2P_TAG 7001
#define TSR_A2A_TAG 7002

/* ---- request state ------------------------------------------------------- */

tsr_status tsr_mpi_reserve_requests(tsr_comm_request *req, int n)
{
    if (n <= req->cap_mpi)
        return TSR_OK;
    MPI_Request *r = realloc(req->mpi_reqs, (size_t)n * sizeof *r);
    if (r == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate %d MPI requests", n);
    req->mpi_reqs = r;
    req->cap_mpi = n;
    return TSR_OK;
}

/* ---- the own block's copy, in slices between polls ------------------------ */

/* Messages move only while MPI_Test runs (between ranks of a node without
 * single-copy, a pipeline of fragments both ranks must keep feeding), so
 * a large own block copied at the start stalls them; copied after they
 * complete, it is not overlapped at all. Both cost all-gather and
 * all-to-all 5-15% of MPI's busbw at 4-16 MiB on 2 ranks. A slice per poll
 * of 64-256 KiB (a few microseconds) caught up; 16-32 KiB or 1 MiB did not
 * (bench/collectives). Blocks of up to 512 KiB, which copy from cache
 * faster than the messages start, are copied at once (3-5% better at
 * 1 MiB on 2 ranks). */
#define TSR_COPY_SLICE_BYTES ((size_t)128 * 1024)
#define TSR_COPY_AT_ONCE_BYTES ((size_t)512 * 1024)

void tsr_mpi_copy_while_polling(tsr_comm_request *req, void *dst, const void *src, size_t bytes)
{
    req->copy_left = 0;
    if (bytes <= TSR_COPY_AT_ONCE_BYTES) {
        if (bytes > 0)
            memcpy(dst, src, bytes);
        return;
    }
    req->copy_dst = dst;
    req->copy_src = src;
    req->copy_left = bytes;
}

static void copy_slice(tsr_comm_request *req, size_t max)
{
    size_t n = req->copy_left < max ? req->copy_left : max;
    if (n == 0)
        return;
    memcpy(req->copy_dst, req->copy_src, n);
    req->copy_dst += n;
    req->copy_src += n;
    req->copy_left -= n;
}

/* ---- staging of device buffers ------------------------------------------- */

static size_t align_up(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

static tsr_status stage_reserve(tsr_comm_request *req, size_t bytes, size_t n_copies)
{
    if (bytes > req->stage_cap) {
        tsr_stage_host_free(req->stage);
        req->stage = NULL;
        req->stage_cap = 0;
        tsr_status st = tsr_stage_host_alloc(bytes, &req->stage);
        if (st != TSR_OK)
            return st;
        req->stage_cap = bytes;
    }
    if (n_copies > req->copies_cap) {
        tsr_stage_copy *c = realloc(req->copies, n_copies * sizeof *c);
        if (c == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate staging records");
        req->copies = c;
        req->copies_cap = n_copies;
    }
    req->n_copies = 0;
    return TSR_OK;
}

/* Carves `bytes` at *offset of the stage buffer: copies the user's data in
 * when copy_in, records a copy back when copy_back. */
static tsr_status stage_region(tsr_comm_request *req, size_t *offset, const void *user,
                               size_t bytes, bool copy_in, bool copy_back, void **host)
{
    char *h = (char *)req->stage + *offset;
    *host = h;
    if (bytes > 0 && copy_in) {
        tsr_status st = tsr_stage_to_host(h, user, bytes);
        if (st != TSR_OK)
            return st;
    }
    if (bytes > 0 && copy_back) {
        req->copies[req->n_copies].device = (void *)user;
        req->copies[req->n_copies].offset = *offset;
        req->copies[req->n_copies].bytes = bytes;
        req->n_copies++;
    }
    *offset += align_up(bytes);
    return TSR_OK;
}

/* Byte extent of an alltoallv side: max over peers of (displ + count). */
static size_t v_extent(const size_t *counts, const size_t *displs, int n, size_t es)
{
    size_t end = 0;
    for (int p = 0; p < n; p++)
        if (counts[p] > 0 && (displs[p] + counts[p]) * es > end)
            end = (displs[p] + counts[p]) * es;
    return end;
}

/* Input and output extents of a collective, in bytes. */
static void extents(const tsr_comm *comm, const tsr_comm_args *a, size_t *in, size_t *out)
{
    size_t es = tsr_comm_dtype_size(a->dtype), n = a->count, p = (size_t)comm->size;
    switch (a->kind) {
    case TSR_COMM_KIND_REDUCE_SCATTER:
        *in = n * p * es;
        *out = n * es;
        break;
    case TSR_COMM_KIND_ALLGATHER:
        *in = n * es;
        *out = n * p * es;
        break;
    case TSR_COMM_KIND_ALLTOALL:
        *in = *out = n * p * es;
        break;
    case TSR_COMM_KIND_ALLTOALLV:
        *in = v_extent(a->sendcounts, a->sdispls, comm->size, es);
        *out = v_extent(a->recvcounts, a->rdispls, comm->size, es);
        break;
    case TSR_COMM_KIND_BARRIER:
        *in = *out = 0;
        break;
    case TSR_COMM_KIND_REDUCE:
        *in = n * es;
        *out = comm->rank == a->root ? n * es : 0;
        break;
    default:
        *in = *out = n * es;
        break;
    }
}

static bool any_device_p2p(const tsr_comm_args *a)
{
    for (size_t i = 0; i < a->n_p2p; i++)
        if (tsr_stage_is_device(a->p2p[i].buf))
            return true;
    return false;
}

/* ---- start --------------------------------------------------------------- */

tsr_status tsr_mpi_failed(const tsr_comm *comm, const char *op, const char *call, int rc)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    if (call != NULL)
        return tsr_error_set(TSR_ERR_COMM, "MPI %s of %s on group %s failed: %s", call, op,
                             comm->name, text);
    return tsr_error_set(TSR_ERR_COMM, "MPI %s on group %s failed: %s", op, comm->name, text);
}

static tsr_status mpi_failed(const tsr_comm *comm, const tsr_comm_args *a, int rc)
{
    return tsr_mpi_failed(comm, tsr_comm_kind_name(a->kind), NULL, rc);
}

/* The world's list of requests in flight that move in steps. */
static tsr_status stepped_add(tsr_comm_shared *shared, tsr_comm_request *req)
{
    if (shared->n_stepped == shared->cap_stepped) {
        int cap = shared->cap_stepped > 0 ? 2 * shared->cap_stepped : 8;
        tsr_comm_request **list = realloc(shared->stepped, (size_t)cap * sizeof *list);
        if (list == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot track %d requests in flight",
                                 cap);
        shared->stepped = list;
        shared->cap_stepped = cap;
    }
    req->stepped_done = false;
    req->stepped_status = TSR_OK;
    shared->stepped[shared->n_stepped++] = req;
    return TSR_OK;
}

static void stepped_remove(tsr_comm_shared *shared, const tsr_comm_request *req)
{
    for (int i = 0; i < shared->n_stepped; i++)
        if (shared->stepped[i] == req) {
            shared->stepped[i] = shared->stepped[--shared->n_stepped];
            return;
        }
}

/* Cancels and frees the messages a request has posted, so that none of
 * them completes into the caller's buffers after it went back to the
 * pool. */
static void cancel_posted(tsr_comm_request *req)
{
    for (int i = 0; i < req->n_mpi; i++) {
        if (req->mpi_reqs[i] == MPI_REQUEST_NULL)
            continue;
        MPI_Cancel(&req->mpi_reqs[i]);
        MPI_Request_free(&req->mpi_reqs[i]);
    }
    req->n_mpi = 0;
}

/* A start that failed part-way: what it posted is cancelled. Returns st. */
static tsr_status withdraw(tsr_comm_request *req, tsr_status st)
{
    cancel_posted(req);
    req->copy_left = 0;
    if (req->tree || req->ring)
        stepped_remove(req->comm->shared, req);
    req->tree = false;
    req->ring = false;
    return st;
}

static tsr_status start_batch(tsr_comm *comm, const tsr_comm_args *a, tsr_comm_request *req)
{
    tsr_status st = tsr_mpi_reserve_requests(req, (int)a->n_p2p);
    if (st != TSR_OK)
        return st;
    bool staged = any_device_p2p(a);
    if (staged) {
        size_t total = 0;
        for (size_t i = 0; i < a->n_p2p; i++)
            total += align_up(a->p2p[i].count * tsr_comm_dtype_size(a->p2p[i].dtype));
        st = stage_reserve(req, total, a->n_p2p);
        if (st != TSR_OK)
            return st;
    }
    size_t off = 0;
    for (size_t i = 0; i < a->n_p2p; i++) {
        const tsr_comm_p2p *op = &a->p2p[i];
        void *buf = op->buf;
        if (staged) {
            st = stage_region(req, &off, op->buf, op->count * tsr_comm_dtype_size(op->dtype),
                              op->is_send, !op->is_send, &buf);
            if (st != TSR_OK)
                return st;
        }
        MPI_Datatype t = tsr_comm_mpi_type(comm, op->dtype);
        int rc = op->is_send ? MPI_Isend(buf, (int)op->count, t, op->peer, TSR_P2P_TAG, comm->mpi,
                                         &req->mpi_reqs[req->n_mpi])
                             : MPI_Irecv(buf, (int)op->count, t, op->peer, TSR_P2P_TAG, comm->mpi,
                                         &req->mpi_reqs[req->n_mpi]);
        if (rc != MPI_SUCCESS)
            return withdraw(req, mpi_failed(comm, a, rc));
        req->n_mpi++;
    }
    return TSR_OK;
}

/* All-to-all(v) as one batch of Irecv/Isend plus a local copy of this
 * rank's own block, made while the messages travel (a slice per poll).
 * Open MPI 4.1's MPI_Ialltoall copies that block in a round of its own,
 * which costs 5-10% of busbw at 1 MiB (bench/collectives). Peers are
 * visited from rank+1 onwards so that no rank is everybody's first
 * target. The tag is the all-to-all's own: collectives start in the
 * same order on every rank, so pairs match in order and never with user
 * send/recv. */
static tsr_status start_alltoall(tsr_comm *comm, const tsr_comm_args *a, const void *send,
                                 void *recv, tsr_comm_request *req)
{
    int p = comm->size, me = comm->rank;
    size_t es = tsr_comm_dtype_size(a->dtype);
    tsr_status st = tsr_mpi_reserve_requests(req, 2 * p);
    if (st != TSR_OK)
        return st;
    MPI_Datatype t = tsr_comm_mpi_type(comm, a->dtype);
    bool v = a->kind == TSR_COMM_KIND_ALLTOALLV;
    req->n_mpi = 0;
    for (int pass = 0; pass < 2; pass++) /* every receive posted before any send */
        for (int k = 1; k < p; k++) {
            int peer = (me + k) % p, from = (me - k + p) % p;
            int rc;
            if (pass == 0) {
                size_t n = v ? a->recvcounts[from] : a->count;
                size_t at = v ? a->rdispls[from] : (size_t)from * a->count;
                rc = MPI_Irecv(n > 0 ? (char *)recv + at * es : recv, (int)n, t, from,
                               TSR_A2A_TAG, comm->mpi, &req->mpi_reqs[req->n_mpi]);
            } else {
                size_t n = v ? a->sendcounts[peer] : a->count;
                size_t at = v ? a->sdispls[peer] : (size_t)peer * a->count;
                rc = MPI_Isend(n > 0 ? (const char *)send + at * es : send, (int)n, t, peer,
                               TSR_A2A_TAG, comm->mpi, &req->mpi_reqs[req->n_mpi]);
            }
            if (rc != MPI_SUCCESS)
                return withdraw(req, mpi_failed(comm, a, rc));
            req->n_mpi++;
        }
    size_t n = v ? a->sendcounts[me] : a->count;
    size_t from = v ? a->sdispls[me] : (size_t)me * a->count;
    size_t to = v ? a->rdispls[me] : (size_t)me * a->count;
    tsr_mpi_copy_while_polling(req, (char *)recv + to * es, (const char *)send + from * es,
                               n * es);
    return TSR_OK; /* a group of one has no requests: MPI_Testall completes at once */
}

static tsr_status mpi_start(tsr_comm *comm, const tsr_comm_args *a, tsr_comm_request *req)
{
    req->copy_left = 0;
    if (a->p2p != NULL)
        return start_batch(comm, a, req);
    tsr_status st = tsr_mpi_reserve_requests(req, 1);
    if (st != TSR_OK)
        return st;
    const void *send = a->sendbuf;
    void *recv = a->recvbuf;
    bool staged = tsr_stage_is_device(send) || tsr_stage_is_device(recv);
    if (staged) {
        size_t in = 0, out = 0, off = 0;
        extents(comm, a, &in, &out);
        st = stage_reserve(req, align_up(in) + align_up(out), 1);
        if (st != TSR_OK)
            return st;
        void *host_send = NULL;
        bool root = comm->rank == a->root;
        if (a->kind == TSR_COMM_KIND_BROADCAST) {
            /* one buffer: filled from sendbuf on root, copied to recvbuf everywhere */
            st = stage_region(req, &off, root ? send : recv, in, root, false, &recv);
            if (st == TSR_OK)
                req->copies[req->n_copies++] = (tsr_stage_copy){a->recvbuf, 0, in};
            send = recv;
        } else if (a->kind == TSR_COMM_KIND_RECV) {
            st = stage_region(req, &off, recv, in, false, true, &recv);
        } else if (a->kind == TSR_COMM_KIND_SEND) {
            st = stage_region(req, &off, send, in, true, false, &host_send);
            send = host_send;
        } else {
            st = stage_region(req, &off, send, in, true, false, &host_send);
            if (st == TSR_OK)
                st = stage_region(req, &off, recv, out, false, true, &recv);
            send = host_send;
        }
        if (st != TSR_OK)
            return st;
    }
    if (tsr_mpi_ring_applies(comm, a)) {
        st = a->kind == TSR_COMM_KIND_ALLREDUCE
                 ? tsr_mpi_ring_allreduce_start(comm, a, send, recv, req)
                 : tsr_mpi_direct_allgather_start(comm, a, send, recv, req);
        if (st == TSR_OK && req->ring)
            st = stepped_add(comm->shared, req);
        return st == TSR_OK ? TSR_OK : withdraw(req, st);
    }
    MPI_Datatype t = tsr_comm_mpi_type(comm, a->dtype);
    MPI_Request *r = &req->mpi_reqs[0];
    int n = (int)a->count, rc = MPI_SUCCESS;
    size_t es = tsr_comm_dtype_size(a->dtype);
    switch (a->kind) {
    case TSR_COMM_KIND_ALLREDUCE:
        rc = MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send, recv, n, t,
                            tsr_comm_mpi_op(comm, a->dtype, a->op), comm->mpi, r);
        break;
    case TSR_COMM_KIND_REDUCE_SCATTER:
        if (!staged && n > 0 && (const char *)send + (size_t)comm->rank * (size_t)n * es ==
                                    (const char *)recv) {
            /* NCCL's in-place form: MPI's leaves the result at the start of
             * the buffer, so move it to this rank's block on completion */
            req->move_dst = recv;
            req->move_src = send;
            req->move_bytes = (size_t)n * es;
            rc = MPI_Ireduce_scatter_block(MPI_IN_PLACE, (void *)send, n, t,
                                           tsr_comm_mpi_op(comm, a->dtype, a->op), comm->mpi, r);
        } else {
            rc = MPI_Ireduce_scatter_block(send, recv, n, t,
                                           tsr_comm_mpi_op(comm, a->dtype, a->op), comm->mpi, r);
        }
        break;
    case TSR_COMM_KIND_ALLGATHER: {
        bool in_place = !staged && n > 0 &&
                        (const char *)recv + (size_t)comm->rank * (size_t)n * es ==
                            (const char *)send;
        rc = MPI_Iallgather(in_place ? MPI_IN_PLACE : send, n, t, recv, n, t, comm->mpi, r);
        break;
    }
    case TSR_COMM_KIND_BROADCAST:
        if (!staged && comm->rank == a->root && send != recv && n > 0)
            memcpy(recv, send, (size_t)n * es);
        rc = MPI_Ibcast(recv, n, t, a->root, comm->mpi, r);
        break;
    case TSR_COMM_KIND_REDUCE: {
        if (comm->size <= TSR_REDUCE_TREE_MAX_RANKS) {
            st = tsr_mpi_reserve_requests(req, TSR_REDUCE_TREE_MAX_CHILDREN);
            if (st == TSR_OK)
                st = tsr_mpi_reduce_tree_start(comm, a, send, recv, req);
            if (st == TSR_OK)
                st = stepped_add(comm->shared, req);
            return st == TSR_OK ? TSR_OK : withdraw(req, st);
        }
        bool in_place = comm->rank == a->root && send == recv;
        rc = MPI_Ireduce(in_place ? MPI_IN_PLACE : send, recv, n, t,
                         tsr_comm_mpi_op(comm, a->dtype, a->op), a->root, comm->mpi, r);
        break;
    }
    case TSR_COMM_KIND_ALLTOALL:
    case TSR_COMM_KIND_ALLTOALLV:
        return start_alltoall(comm, a, send, recv, req);
    case TSR_COMM_KIND_SEND:
        rc = MPI_Isend(send, n, t, a->root, TSR_P2P_TAG, comm->mpi, r);
        break;
    case TSR_COMM_KIND_RECV:
        rc = MPI_Irecv(recv, n, t, a->root, TSR_P2P_TAG, comm->mpi, r);
        break;
    case TSR_COMM_KIND_BARRIER:
        rc = MPI_Ibarrier(comm->mpi, r);
        break;
    default:
        return tsr_error_set(TSR_ERR_INTERNAL, "MPI backend: unknown operation %d", (int)a->kind);
    }
    if (rc != MPI_SUCCESS)
        return mpi_failed(comm, a, rc);
    req->n_mpi = 1;
    return TSR_OK;
}

/* ---- completion ---------------------------------------------------------- */

/* One step of a tree or ring, if it can make one; off the list once it
 * is finished (the owner collects it in mpi_test). */
static void stepped_advance(tsr_comm_request *req)
{
    if (req->stepped_done)
        return;
    bool done = false;
    tsr_status st = req->tree ? tsr_mpi_reduce_tree_test(req, &done)
                              : tsr_mpi_ring_allreduce_test(req, &done);
    if (st != TSR_OK || done) {
        if (st != TSR_OK) /* its next steps will never be posted */
            cancel_posted(req);
        req->stepped_status = st;
        req->stepped_done = true;
        stepped_remove(req->comm->shared, req);
    }
}

/* A communicator being destroyed with trees or rings still in flight (a
 * wait that failed before them, say): they leave the world's list, which
 * must never point into a freed communicator. */
static void mpi_destroy(tsr_comm *comm)
{
    tsr_comm_shared *shared = comm->shared;
    for (int i = shared->n_stepped - 1; i >= 0; i--) {
        if (i >= shared->n_stepped || shared->stepped[i]->comm != comm)
            continue;
        tsr_comm_request *req = shared->stepped[i];
        cancel_posted(req);
        req->stepped_done = true;
        stepped_remove(shared, req);
    }
}

static void mpi_progress(tsr_comm_shared *shared)
{
    /* stepped_advance may remove the entry it advances: walk backwards */
    for (int i = shared->n_stepped - 1; i >= 0; i--)
        if (i < shared->n_stepped)
            stepped_advance(shared->stepped[i]);
}

static tsr_status mpi_test(tsr_comm_request *req, bool *done)
{
    int flag = 0;
    *done = false;
    if (req->tree || req->ring) {
        stepped_advance(req);
        if (!req->stepped_done)
            return TSR_OK;
        req->tree = req->ring = false;
        if (req->stepped_status != TSR_OK)
            return req->stepped_status;
    } else {
        int rc = req->n_mpi == 1
                     ? MPI_Test(&req->mpi_reqs[0], &flag, MPI_STATUS_IGNORE)
                     : MPI_Testall(req->n_mpi, req->mpi_reqs, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return tsr_error_set(TSR_ERR_COMM, "MPI_Test of %s on group %s failed (%d)",
                                 tsr_comm_kind_name(req->kind), req->comm->name, rc);
        if (!flag) {
            copy_slice(req, TSR_COPY_SLICE_BYTES); /* after the test: it answers peers first */
            return TSR_OK;
        }
        copy_slice(req, req->copy_left);
    }
    if (req->move_bytes > 0 && req->move_dst != req->move_src)
        memmove(req->move_dst, req->move_src, req->move_bytes);
    req->move_bytes = 0;
    for (size_t i = 0; i < req->n_copies; i++) {
        tsr_status st = tsr_stage_to_device(req->copies[i].device,
                                            (char *)req->stage + req->copies[i].offset,
                                            req->copies[i].bytes);
        if (st != TSR_OK)
            return st;
    }
    req->n_copies = 0;
    req->n_mpi = 0;
    *done = true;
    return TSR_OK;
}

static void mpi_request_free(tsr_comm_request *req)
{
    free(req->scratch);
    req->scratch = NULL;
    req->scratch_cap = 0;
    tsr_stage_host_free(req->stage);
    req->stage = NULL;
    req->stage_cap = 0;
}

static tsr_status mpi_split(tsr_comm *parent, tsr_comm *child, int color, int key)
{
    (void)parent;
    (void)child;
    (void)color;
    (void)key;
    return TSR_OK; /* the front end's MPI_Comm_split is all there is */
}

const tsr_comm_backend_ops tsr_comm_mpi_ops = {
    .start = mpi_start,
    .test = mpi_test,
    .request_free = mpi_request_free,
    .split = mpi_split,
    .destroy = mpi_destroy,
    .abort = NULL,
    .progress = mpi_progress,
};
