/*
 * mpi_reduce.c - reduce as a binomial tree of point-to-point messages,
 * advanced by the MPI backend's polling, for groups of up to 8 ranks.
 *
 * Why not MPI_Ireduce: Open MPI 4.1's non-blocking reduce (coll/libnbc)
 * picks a segmented "chain" for two ranks, which advances one small
 * segment per MPI_Test (25-45% of the blocking MPI_Reduce's busbw), and
 * reduce-scatter + gather for more, which took 66-72% of it on 4 ranks
 * (bench/collectives). Here each rank receives its children's whole
 * buffers, folds them in with MPI_Reduce_local and sends the result to its
 * parent: one message per edge, as fast as the blocking call on 2-8 ranks.
 * Larger groups keep the library's algorithm, whose root carries about 2x
 * the message however many ranks there are, where a binomial root carries
 * log2(p) x.
 *
 * Tree: on relative ranks v = (rank - root) mod p, the children of v are
 * v + 1, v + 2, v + 4, ... below v's lowest set bit (and below p); the
 * parent is v minus that bit. Children are folded in that fixed order,
 * whatever order they arrive in, so results are bitwise reproducible.
 * The first child's data lands in the accumulator itself (recvbuf on the
 * root, a scratch buffer elsewhere) and the rank's own data is folded into
 * it, which saves copying the own data first; on an in-place root the own
 * data is already in recvbuf and every child lands in scratch.
 */
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"

/* A tag per operation, from its collective number (as the rings',
 * mpi_ring.c): two trees in flight advance in an order that may differ
 * between ranks and must not take each other's messages. */
#define TSR_REDUCE_TAG_BASE 24576
#define TSR_REDUCE_TAGS 8192

static int tree_tag(const tsr_comm_request *req)
{
    return TSR_REDUCE_TAG_BASE + (int)(req->seq % TSR_REDUCE_TAGS);
}

static int absolute(int v, int root, int p)
{
    return (v + root) % p;
}

static tsr_status failed(const tsr_comm *comm, const char *call, int rc)
{
    return tsr_mpi_failed(comm, "reduce", call, rc);
}

tsr_status tsr_mpi_reduce_tree_start(tsr_comm *comm, const tsr_comm_args *a, const void *send,
                                     void *recv, tsr_comm_request *req)
{
    int p = comm->size, v = (comm->rank - a->root + p) % p, n = (int)a->count;
    size_t bytes = a->count * tsr_comm_dtype_size(a->dtype);
    req->tree = true;
    req->tree_sent = false;
    req->tree_children = req->tree_next = 0;
    req->tree_parent = -1;
    if (n == 0)
        return TSR_OK; /* every rank has the same count: nothing to send */
    int children = 0, low = p; /* lowest set bit of v; the root has none */
    for (int bit = 1; bit < p; bit <<= 1)
        if (v & bit) {
            low = bit;
            break;
        }
    for (int bit = 1; bit < low && v + bit < p; bit <<= 1)
        children++;
    bool root = v == 0, in_place = root && send == recv;
    /* scratch slots: off the root, the accumulator (where child 0 lands)
     * and one per further child; on the root, one per child that does not
     * land in recvbuf; a leaf needs none */
    int slots = root && !in_place && children > 0 ? children - 1 : children;
    if ((size_t)slots * bytes > req->scratch_cap) {
        void *s = realloc(req->scratch, (size_t)slots * bytes);
        if (s == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                                 "cannot allocate %zu bytes for reduce on group %s",
                                 (size_t)slots * bytes, comm->name);
        req->scratch = s;
        req->scratch_cap = (size_t)slots * bytes;
    }
    req->tree_children = children;
    req->tree_parent = root ? -1 : absolute(v - low, a->root, p);
    req->tree_count = n;
    req->tree_type = tsr_comm_mpi_type(comm, a->dtype);
    req->tree_op = tsr_comm_mpi_op(comm, a->dtype, a->op);
    req->tree_own = send;
    req->tree_acc = root ? recv : req->scratch;
    char *slot = (char *)req->scratch + (root ? 0 : bytes);
    for (int k = 0; k < children; k++) {
        void *land;
        if (k == 0 && !in_place) {
            land = req->tree_acc;
        } else {
            land = slot;
            slot += bytes;
        }
        req->tree_land[k] = land;
        int rc = MPI_Irecv(land, n, req->tree_type, absolute(v + (1 << k), a->root, p),
                           tree_tag(req), comm->mpi, &req->mpi_reqs[k]);
        if (rc != MPI_SUCCESS)
            return failed(comm, "Irecv", rc);
        req->n_mpi = k + 1;
    }
    if (children == 0 && !root) { /* a leaf sends its own data at once */
        int rc = MPI_Isend(send, n, req->tree_type, req->tree_parent, tree_tag(req), comm->mpi,
                           &req->mpi_reqs[0]);
        if (rc != MPI_SUCCESS)
            return failed(comm, "Isend", rc);
        req->n_mpi = 1;
        req->tree_sent = true;
    }
    if (root && children == 0 && !in_place && bytes > 0) /* a group of one */
        memcpy(recv, send, bytes);
    return TSR_OK;
}

tsr_status tsr_mpi_reduce_tree_test(tsr_comm_request *req, bool *done)
{
    *done = false;
    const tsr_comm *comm = req->comm;
    int flag = 0, rc = MPI_SUCCESS;
    while (!req->tree_sent && req->tree_next < req->tree_children) {
        int k = req->tree_next;
        if ((rc = MPI_Test(&req->mpi_reqs[k], &flag, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
            return failed(comm, "Test", rc);
        if (!flag)
            return TSR_OK;
        /* a child that landed in the accumulator gets the own data folded
         * in; any other is folded into the accumulator */
        const void *in = req->tree_land[k] == req->tree_acc ? req->tree_own : req->tree_land[k];
        rc = MPI_Reduce_local(in, req->tree_acc, req->tree_count, req->tree_type, req->tree_op);
        if (rc != MPI_SUCCESS)
            return failed(comm, "Reduce_local", rc);
        req->tree_next++;
    }
    if (!req->tree_sent && req->tree_parent >= 0) {
        rc = MPI_Isend(req->tree_acc, req->tree_count, req->tree_type, req->tree_parent,
                       tree_tag(req), comm->mpi, &req->mpi_reqs[0]);
        if (rc != MPI_SUCCESS)
            return failed(comm, "Isend", rc);
        req->n_mpi = 1;
        req->tree_sent = true;
    }
    if (req->tree_sent) {
        if ((rc = MPI_Test(&req->mpi_reqs[0], &flag, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
            return failed(comm, "Test", rc);
        if (!flag)
            return TSR_OK;
    }
    req->n_mpi = 0; /* req->tree stays set until the owner collects it (mpi.c) */
    *done = true;
    return TSR_OK;
}
