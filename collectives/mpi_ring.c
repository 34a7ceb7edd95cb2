/*
 * mpi_ring.c - all-reduce as a ring and all-gather as direct exchanges, of
 * point-to-point messages advanced by the MPI backend's polling (large
 * all-reduces; all-gathers on groups of up to 16).
 *
 * Why not MPI_Iallreduce / MPI_Iallgather: Open MPI 4.1's non-blocking
 * collectives (coll/libnbc) reached 0.77-0.82 of the blocking
 * MPI_Allreduce's bus bandwidth and 0.45-0.54 of MPI_Allgather's at 1-8 MiB
 * on two ranks (bench/collectives), and the blocking calls cannot be
 * bounded by the watchdog. A ring moves the minimum a rank can (2 (p-1)/p
 * of the buffer) in 2 (p-1) steps; for small buffers the steps' latency
 * outweighs that, and the library's algorithm stays.
 *
 * Ring all-reduce: the buffer is cut in p chunks (sizes differ by at most
 * one element). Reduce-scatter: at step s a rank sends chunk (r - s) to
 * its right neighbour and receives chunk (r - s - 1) from its left, and
 * folds its own data into it; after p - 1 steps it holds chunk (r + 1)
 * reduced over every rank. All-gather: at step s it sends chunk (r + 1 - s)
 * and receives chunk (r - s), which overwrites its own. Every chunk is
 * reduced once, in a fixed order, and then copied: every rank ends with
 * bitwise the same result, and the same from run to run. Out of place the
 * received chunk lands in recvbuf itself and the own data is folded into
 * it (no copy of the own data first); in place it lands in a scratch chunk.
 * The two fold the operands in opposite order: the same bits for sums; a
 * max of +0 and -0 (or of two NaNs) may keep a different one of the two.
 */
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"

/* Each operation's messages carry a tag of its own, from its collective
 * number on the group: two rings in flight on one group advance step by
 * step as each rank tests them, in an order that may differ between
 * ranks, and must never take each other's messages. */
#define TSR_RING_TAG_BASE 8192
#define TSR_RING_TAGS 16384

static int ring_tag(const tsr_comm_request *req)
{
    return TSR_RING_TAG_BASE + (int)(req->seq % TSR_RING_TAGS);
}

bool tsr_mpi_ring_applies(const tsr_comm *comm, const tsr_comm_args *a)
{
    size_t bytes = a->count * tsr_comm_dtype_size(a->dtype), steps = (size_t)comm->size - 1;
    if (comm->size < 2)
        return false;
    /* the ring pays 2 (p - 1) latencies, and on oversubscribed cores a
     * time slice per step: it won from 64 KiB on 2 ranks, and from between
     * 0.5 and 1 MiB on 4 (bench/collectives); 64 KiB x (p - 1)^2 */
    if (a->kind == TSR_COMM_KIND_ALLREDUCE)
        return bytes >= TSR_RING_MIN_BYTES * steps * steps && a->count >= (size_t)comm->size;
    /* one round of messages in parallel: at 0.84-1.01 of MPI_Allgather on
     * 2 ranks and 1.2-1.7 on 4 at every size from 1 KiB to 16 MiB, where
     * MPI_Iallgather reached 0.42-0.91 (bench/collectives); larger groups
     * were not measured */
    return a->kind == TSR_COMM_KIND_ALLGATHER && comm->size <= TSR_RING_ALLGATHER_MAX_RANKS;
}

/* First element and length of chunk c of n elements cut in p. */
static void chunk(size_t n, int p, int c, size_t *first, size_t *len)
{
    size_t base = n / (size_t)p, extra = n % (size_t)p, uc = (size_t)c;
    *first = uc * base + (uc < extra ? uc : extra);
    *len = base + (uc < extra ? 1 : 0);
}

static int mod(int x, int p)
{
    return ((x % p) + p) % p;
}

/* Posts step req->ring_step: its receive, then its send. */
static tsr_status post_step(tsr_comm_request *req)
{
    const tsr_comm *comm = req->comm;
    int p = comm->size, r = comm->rank, s = req->ring_step;
    int right = mod(r + 1, p), left = mod(r - 1, p);
    bool reducing = s < p - 1;
    int out_chunk = reducing ? mod(r - s, p) : mod(r + 1 - (s - (p - 1)), p);
    int in_chunk = reducing ? mod(r - s - 1, p) : mod(r - (s - (p - 1)), p);
    size_t es = req->ring_es, out_first, out_len, in_first, in_len;
    chunk(req->ring_count, p, out_chunk, &out_first, &out_len);
    chunk(req->ring_count, p, in_chunk, &in_first, &in_len);
    /* the own data is sent as it is at the first step, out of place */
    const char *from =
        s == 0 && !req->ring_in_place ? (const char *)req->tree_own : (const char *)req->ring_recv;
    char *into = (char *)req->ring_recv + in_first * es;
    if (reducing && req->ring_in_place)
        into = req->scratch;
    int rc = MPI_Irecv(into, (int)in_len, req->tree_type, left, ring_tag(req), comm->mpi,
                       &req->mpi_reqs[0]);
    if (rc != MPI_SUCCESS)
        return tsr_mpi_failed(comm, "allreduce", "Irecv", rc);
    req->n_mpi = 1; /* posted: cancelled if what follows fails */
    rc = MPI_Isend(from + out_first * es, (int)out_len, req->tree_type, right, ring_tag(req),
                   comm->mpi, &req->mpi_reqs[1]);
    if (rc != MPI_SUCCESS)
        return tsr_mpi_failed(comm, "allreduce", "Isend", rc);
    req->n_mpi = 2;
    req->ring_in_first = in_first;
    req->ring_in_len = in_len;
    return TSR_OK;
}

tsr_status tsr_mpi_ring_allreduce_start(tsr_comm *comm, const tsr_comm_args *a, const void *send,
                                        void *recv, tsr_comm_request *req)
{
    size_t es = tsr_comm_dtype_size(a->dtype), first, len;
    chunk(a->count, comm->size, 0, &first, &len); /* chunk 0 is the largest */
    tsr_status st = tsr_mpi_reserve_requests(req, 2);
    if (st != TSR_OK)
        return st;
    bool in_place = send == recv;
    if (in_place && len * es > req->scratch_cap) {
        void *s = realloc(req->scratch, len * es);
        if (s == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                                 "cannot allocate %zu bytes for allreduce on group %s", len * es,
                                 comm->name);
        req->scratch = s;
        req->scratch_cap = len * es;
    }
    req->ring = true;
    req->ring_step = 0;
    req->ring_count = a->count;
    req->ring_es = es;
    req->ring_in_place = in_place;
    req->ring_recv = recv;
    req->tree_own = send;
    req->tree_type = tsr_comm_mpi_type(comm, a->dtype);
    req->tree_op = tsr_comm_mpi_op(comm, a->dtype, a->op);
    return post_step(req);
}

tsr_status tsr_mpi_ring_allreduce_test(tsr_comm_request *req, bool *done)
{
    *done = false;
    const tsr_comm *comm = req->comm;
    int p = comm->size;
    for (;;) {
        int flag = 0, rc = MPI_Testall(2, req->mpi_reqs, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return tsr_mpi_failed(comm, "allreduce", "Testall", rc);
        if (!flag)
            return TSR_OK;
        if (req->ring_step < p - 1) { /* fold the own data (or the partial sum) in */
            char *acc = (char *)req->ring_recv + req->ring_in_first * req->ring_es;
            const void *in = req->ring_in_place
                                 ? req->scratch
                                 : (const char *)req->tree_own + req->ring_in_first * req->ring_es;
            rc = MPI_Reduce_local(in, acc, (int)req->ring_in_len, req->tree_type, req->tree_op);
            if (rc != MPI_SUCCESS)
                return tsr_mpi_failed(comm, "allreduce", "Reduce_local", rc);
        }
        if (++req->ring_step == 2 * (p - 1))
            break;
        /* out of place, a partial sum folded at step s is sent at s + 1 from
         * recvbuf, where it already is */
        tsr_status st = post_step(req);
        if (st != TSR_OK)
            return st;
    }
    req->n_mpi = 0; /* req->ring stays set until the owner collects it (mpi.c) */
    *done = true;
    return TSR_OK;
}

tsr_status tsr_mpi_direct_allgather_start(tsr_comm *comm, const tsr_comm_args *a, const void *send,
                                          void *recv, tsr_comm_request *req)
{
    int p = comm->size, me = comm->rank;
    size_t es = tsr_comm_dtype_size(a->dtype), block = a->count * es;
    tsr_status st = tsr_mpi_reserve_requests(req, 2 * (p - 1));
    if (st != TSR_OK)
        return st;
    MPI_Datatype t = tsr_comm_mpi_type(comm, a->dtype);
    char *own = (char *)recv + (size_t)me * block;
    req->n_mpi = 0;
    for (int pass = 0; pass < 2; pass++) /* every receive posted before any send */
        for (int k = 1; k < p; k++) {
            int peer = (me + k) % p, from = (me - k + p) % p, rc;
            if (pass == 0)
                rc = MPI_Irecv((char *)recv + (size_t)from * block, (int)a->count, t, from,
                               ring_tag(req), comm->mpi, &req->mpi_reqs[req->n_mpi]);
            else
                rc = MPI_Isend(send, (int)a->count, t, peer, ring_tag(req), comm->mpi,
                               &req->mpi_reqs[req->n_mpi]);
            if (rc != MPI_SUCCESS)
                return tsr_mpi_failed(comm, "allgather", pass == 0 ? "Irecv" : "Isend", rc);
            req->n_mpi++;
        }
    /* the own block is copied a slice per poll while the messages travel
     * (mpi.c): they are sent from sendbuf, which the copy only reads */
    if ((const char *)send != own)
        tsr_mpi_copy_while_polling(req, own, send, block);
    return TSR_OK;
}
