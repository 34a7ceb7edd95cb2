/*
 * comm_internal.h - what the front end (comm.c), the backends (mpi.c,
 * nccl.c) and the watchdog share; not part of the public API.
 *
 * Invariants: every tsr_comm owns an MPI communicator (mpi), whatever its
 * backend, used for set-up, splitting and the watchdog's arrival window.
 * A request belongs to exactly one communicator and lives in that
 * communicator's free list when not in flight, so steady-state calls do not
 * allocate. seq counts the collectives started on the group (p2p excluded);
 * it is what the watchdog publishes.
 */
#ifndef TSR_COLLECTIVES_COMM_INTERNAL_H
#define TSR_COLLECTIVES_COMM_INTERNAL_H

#include "comm.h"
#include "comm_trace.h"
#include "watchdog.h"

/* Reduce as a binomial tree of point-to-point messages (mpi_reduce.c):
 * used by the MPI backend for groups of up to this many ranks, in which a
 * rank has at most log2 of it children. */
#define TSR_REDUCE_TREE_MAX_RANKS 8
#define TSR_REDUCE_TREE_MAX_CHILDREN 3

/* A batch's peers the watchdog describes when it does not complete. */
#define TSR_COMM_BATCH_PEERS_SHOWN 4

/* What one operation is about, as the caller gave it (counts in elements). */
typedef struct tsr_comm_args {
    tsr_comm_kind kind;
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    tsr_comm_dtype dtype;
    tsr_comm_op op;
    int root; /* broadcast/reduce root, or the peer of send/recv */
    const size_t *sendcounts, *sdispls, *recvcounts, *rdispls; /* alltoallv */
    const tsr_comm_p2p *p2p;                                   /* batch */
    size_t n_p2p;
} tsr_comm_args;

/* A device buffer the MPI backend copies back after completion. */
typedef struct tsr_stage_copy {
    void *device;
    size_t offset; /* into the request's pinned buffer */
    size_t bytes;
} tsr_stage_copy;

struct tsr_comm_request {
    tsr_comm *comm;
    tsr_comm_kind kind;
    uint64_t seq;    /* collective number on comm (1-based); 0 for p2p */
    int peer;        /* p2p: first peer, for messages */
    int peers[TSR_COMM_BATCH_PEERS_SHOWN]; /* p2p batch: its distinct peers */
    int n_peers;
    uint64_t trace_serial; /* its entry in the ring of recent calls */
    uint64_t bytes;  /* counted at start */
    uint64_t wait_started_ns; /* 0 until first wait/test */
    struct tsr_comm_request *next_free;

    /* MPI backend */
    MPI_Request *mpi_reqs;
    int n_mpi, cap_mpi;
    void *stage; /* pinned host buffer, device buffers only */
    size_t stage_cap;
    tsr_stage_copy *copies;
    size_t n_copies, copies_cap;
    void *move_dst; /* in-place reduce-scatter fix-up after completion */
    const void *move_src;
    size_t move_bytes;
    /* all-gather / all-to-all: this rank's own block, copied a slice per
     * poll while the messages travel and finished at completion */
    char *copy_dst;
    const char *copy_src;
    size_t copy_left;
    /* tree reduce (mpi_reduce.c): children's buffers and the accumulator */
    bool tree; /* in flight */
    bool tree_sent;
    int tree_children, tree_next, tree_parent; /* parent: -1 on the root */
    int tree_count;
    MPI_Datatype tree_type;
    MPI_Op tree_op;
    const void *tree_own;
    void *tree_acc;
    void *tree_land[TSR_REDUCE_TREE_MAX_CHILDREN]; /* where child k's data lands */
    void *scratch;
    size_t scratch_cap;

    /* tree and ring requests advance step by step, also while their owner
     * waits on another request (tsr_comm_backend_ops.progress): finished
     * once stepped_done, with stepped_status */
    bool stepped_done;
    tsr_status stepped_status;
    /* ring all-reduce (mpi_ring.c); shares tree_own, tree_type, tree_op */
    bool ring; /* in flight */
    bool ring_in_place;
    int ring_step; /* 0 .. 2 (p - 1) */
    size_t ring_count, ring_es;
    void *ring_recv;
    size_t ring_in_first, ring_in_len; /* the chunk the current step receives */

    /* NCCL backend: a cudaEvent_t recorded after the operation */
    void *event;
};

typedef struct tsr_comm_shared tsr_comm_shared;

typedef struct tsr_comm_backend_ops {
    /* Starts args on comm, filling req's backend state. */
    tsr_status (*start)(tsr_comm *comm, const tsr_comm_args *args, tsr_comm_request *req);
    /* Non-blocking completion check; finishes the op when done. */
    tsr_status (*test)(tsr_comm_request *req, bool *done);
    /* Releases backend resources held by a pooled request. */
    void (*request_free)(tsr_comm_request *req);
    /* Backend half of a split (child->mpi already made); child == NULL for
     * a rank that joins no group but must still take part. */
    tsr_status (*split)(tsr_comm *parent, tsr_comm *child, int color, int key);
    void (*destroy)(tsr_comm *comm);
    /* Called by the watchdog before it aborts the job. */
    void (*abort)(tsr_comm *comm);
    /* Advances every operation of this world that moves in steps (NULL if
     * none does): called on every poll of any request, so that waiting on
     * one never starves another that a peer waits on. */
    void (*progress)(tsr_comm_shared *shared);
} tsr_comm_backend_ops;

/* State shared by a world communicator and every group split from it. */
struct tsr_comm_shared {
    int refs;
    MPI_Comm abort_comm; /* the world's MPI communicator, for MPI_Abort */
    double timeout_seconds;
    tsr_comm_backend backend;
    const tsr_comm_backend_ops *ops;
    int local_rank; /* on this node: picks the GPU */
    MPI_Datatype bf16_type;
    MPI_Op bf16_sum, bf16_max;
    tsr_trace trace; /* this process's ring of recent calls, over the world */
    /* requests in flight that move in steps (trees, rings; MPI backend) */
    tsr_comm_request **stepped;
    int n_stepped, cap_stepped;
};

struct tsr_comm {
    tsr_comm_shared *shared;
    MPI_Comm mpi;
    int rank, size;
    char name[32];
    bool is_world;    /* made by tsr_comm_create_world, not split */
    int *world_ranks; /* world rank of each member */
    uint64_t seq;     /* collectives started so far */
    tsr_watchdog_window window;
    tsr_comm_counters counters;
    tsr_comm_request *free_list;
    void *backend; /* backend-private (NCCL: communicator, stream) */
};

/* The bounded rendezvous of parent's members before a split (comm.c):
 * a collective of kind TSR_COMM_KIND_SPLIT on parent. */
tsr_status tsr_comm_split_rendezvous(tsr_comm *parent, tsr_call_site site);

/* Never returns: says which operation did not complete, which ranks never
 * arrived and what they are doing, has the rings written, and aborts the
 * job (watchdog_fire.c). */
void tsr_comm_watchdog_fire(tsr_comm_request *req);

extern const tsr_comm_backend_ops tsr_comm_mpi_ops;
/* NULL when the build has no NCCL. */
extern const tsr_comm_backend_ops *const tsr_comm_nccl_ops;
bool tsr_comm_nccl_built(void);

/* NCCL: per-world set-up once the MPI part exists. */
tsr_status tsr_comm_nccl_init_world(tsr_comm *world);

/* MPI datatype and op of a tessera dtype/op on this world. */
MPI_Datatype tsr_comm_mpi_type(const tsr_comm *comm, tsr_comm_dtype dtype);
MPI_Op tsr_comm_mpi_op(const tsr_comm *comm, tsr_comm_dtype dtype, tsr_comm_op op);

tsr_status tsr_mpi_reduce_tree_start(tsr_comm *comm, const tsr_comm_args *a, const void *send,
                                     void *recv, tsr_comm_request *req);
/* Advances it; *done once this rank's part is over (result in recv on the
 * root). */
tsr_status tsr_mpi_reduce_tree_test(tsr_comm_request *req, bool *done);

/* All-reduce of at least this many bytes times (p - 1)^2 runs as a ring of
 * point-to-point messages (mpi_ring.c), and all-gather on groups of up to
 * TSR_RING_ALLGATHER_MAX_RANKS, where posting one message per peer stays
 * cheap, as direct exchanges. */
#define TSR_RING_MIN_BYTES ((size_t)64 * 1024)
#define TSR_RING_ALLGATHER_MAX_RANKS 16
bool tsr_mpi_ring_applies(const tsr_comm *comm, const tsr_comm_args *a);
tsr_status tsr_mpi_ring_allreduce_start(tsr_comm *comm, const tsr_comm_args *a,
                                        const void *send, void *recv, tsr_comm_request *req);
/* Advances it; *done once every rank's result is in recv. */
tsr_status tsr_mpi_ring_allreduce_test(tsr_comm_request *req, bool *done);
tsr_status tsr_mpi_direct_allgather_start(tsr_comm *comm, const tsr_comm_args *a,
                                          const void *send, void *recv, tsr_comm_request *req);
/* The error of an MPI call of operation op (call NULL: the operation's
 * own non-blocking call) that returned rc, with MPI's text for it (mpi.c). */
tsr_status tsr_mpi_failed(const tsr_comm *comm, const char *op, const char *call, int rc);
/* Has req copy bytes from src to dst while its messages travel, a slice
 * per poll, done at the latest when they complete (mpi.c). */
void tsr_mpi_copy_while_polling(tsr_comm_request *req, void *dst, const void *src, size_t bytes);
/* Grows req's MPI request array to n (mpi.c). */
tsr_status tsr_mpi_reserve_requests(tsr_comm_request *req, int n);

/* Creates the bf16 type and ops of a world (freed by tsr_comm_mpi_types_free). */
tsr_status tsr_comm_mpi_types_create(tsr_comm_shared *shared);
void tsr_comm_mpi_types_free(tsr_comm_shared *shared);

#endif /* TSR_COLLECTIVES_COMM_INTERNAL_H */
