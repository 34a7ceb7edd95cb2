/*
 * comm.h - tessera's one communicator API, over an MPI or an NCCL backend.
 *
 * Everything above the runtime that communicates (sharding/, the launcher's
 * training loop) goes through these functions; nothing else calls MPI or
 * NCCL collectives. A tsr_comm is an opaque group of ranks: the world is
 * made once by tsr_comm_create_world(), every other group is split from a
 * parent by tsr_comm_split() (in practice only sharding/grid.c does that).
 *
 * Conventions (NCCL's, so that code reads the same on CPU and GPU):
 *   - argument order: sendbuf, recvbuf, count, dtype, op/root/peer, comm,
 *     request;
 *   - request == NULL makes the call blocking; otherwise the call only
 *     starts the operation and stores a handle in *request, which must be
 *     completed with tsr_comm_wait() or tsr_comm_test() (both release it).
 *     Buffers belong to the operation until then;
 *   - counts are elements, never bytes;
 *   - all members of a group call its collectives in the same order (the
 *     watchdog numbers them per group to find ranks that never arrived).
 * Memory: host memory on the MPI backend (device memory too when the CUDA
 * backend is built: it is staged through pinned host buffers), device
 * memory on the NCCL backend. tsr_comm_backend_of() says which.
 *
 * No silent hangs: every wait is bounded by the timeout given at world
 * creation (--distributed-timeout-minutes). A collective that has been
 * waited on for longer ends the job (MPI_Abort) after printing which
 * operation, on which group, and which ranks never arrived; with every
 * rank's ring of recent calls (comm_trace.h) it also says where the ranks
 * diverge and what the ranks behind are doing, and writes the rings beside
 * the log. See docs/collectives.md for the design.
 *
 * Functions that create or destroy communicators are collective over the
 * parent (create/split) or the group (destroy). Not thread-safe: one thread
 * per process drives a communicator.
 *
 * Progress: some operations move in steps (large all-reduces, reduce on
 * up to 8 ranks) and advance only while this rank is inside a wait or
 * test of any request of the world; a blocking call made to MPI directly
 * (HDF5's, say) does not advance them, so none should be in flight then.
 */
#ifndef TSR_COLLECTIVES_COMM_H
#define TSR_COLLECTIVES_COMM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/call_site.h"
#include "tessera/config.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_comm tsr_comm;
typedef struct tsr_comm_request tsr_comm_request;

typedef enum tsr_comm_dtype {
    TSR_COMM_FP32 = 0,
    TSR_COMM_BF16, /* reductions convert each element to fp32, add, round back */
    TSR_COMM_INT32,
    TSR_COMM_INT64,
    TSR_COMM_FP64, /* metric sums (losses, token counts) */
    TSR_COMM_DTYPE_COUNT
} tsr_comm_dtype;

typedef enum tsr_comm_op { TSR_COMM_SUM = 0, TSR_COMM_MAX, TSR_COMM_OP_COUNT } tsr_comm_op;

typedef enum tsr_comm_backend { TSR_COMM_BACKEND_MPI = 0, TSR_COMM_BACKEND_NCCL } tsr_comm_backend;

/* What a communicator counts, one counter pair per kind. */
typedef enum tsr_comm_kind {
    TSR_COMM_KIND_ALLREDUCE = 0,
    TSR_COMM_KIND_REDUCE_SCATTER,
    TSR_COMM_KIND_ALLGATHER,
    TSR_COMM_KIND_BROADCAST,
    TSR_COMM_KIND_REDUCE,
    TSR_COMM_KIND_ALLTOALL,
    TSR_COMM_KIND_ALLTOALLV,
    TSR_COMM_KIND_SEND,
    TSR_COMM_KIND_RECV,
    TSR_COMM_KIND_BARRIER,
    TSR_COMM_KIND_SPLIT, /* the rendezvous before a group is split: never counted */
    TSR_COMM_KIND_COUNT
} tsr_comm_kind;

/* Calls and payload bytes of one rank, per kind. Bytes are the size of the
 * data the call is about, as nccl-tests' "size" column: the buffer for
 * all-reduce/broadcast/reduce, the whole (gathered) buffer for all-gather
 * and reduce-scatter (count x group size), everything this rank sends for
 * all-to-all(v) and send, everything it receives for recv; 0 for barrier.
 * Link traffic follows from these with the busbw factors of
 * docs/collectives.md. */
typedef struct tsr_comm_counters {
    uint64_t calls[TSR_COMM_KIND_COUNT];
    uint64_t bytes[TSR_COMM_KIND_COUNT];
} tsr_comm_counters;

/* How the world communicator is made. */
typedef struct tsr_comm_options {
    tsr_backend_choice backend; /* AUTO: NCCL when every rank has its own GPU */
    double timeout_seconds;     /* > 0; the watchdog's bound on every wait */
    const char *name;           /* group name in messages; "world" if NULL */
    const char *report_dir;     /* where a firing watchdog writes the rings; NULL: "." */
} tsr_comm_options;

/* --backend and --distributed-timeout-minutes of a config. */
void tsr_comm_options_from_config(const tsr_config *cfg, tsr_comm_options *opts);

/* Makes the world communicator over `base` (usually MPI_COMM_WORLD, which
 * must be initialised; the communicator keeps its own duplicate). Collective
 * over base. Chooses the backend (tsr_comm_backend_decide) from what every
 * rank sees; with NCCL, selects the GPU numbered by the node-local rank. */
tsr_status tsr_comm_create_world(MPI_Comm base, const tsr_comm_options *opts, tsr_comm **out);

/* Splits `parent` like MPI_Comm_split: ranks with the same color form a
 * group, ordered by key (ties by parent rank). color < 0 (TSR_COMM_NO_COLOR)
 * takes part in the split but joins no group: *out is set to NULL. `name`
 * (copied) labels the group in watchdog messages, e.g. "tp". Collective
 * over parent. The child inherits backend and timeout. */
#define TSR_COMM_NO_COLOR (-1)
/* The ranks first meet in a bounded rendezvous on the parent, so a rank that
 * never comes to the split is named by the watchdog as for a collective. */
tsr_status tsr_comm_split_at(tsr_call_site site, tsr_comm *parent, int color, int key,
                             const char *name, tsr_comm **out);
#define tsr_comm_split(...) tsr_comm_split_at(TSR_HERE, __VA_ARGS__)

/* Frees a communicator; collective over its group. NULL is a no-op.
 * Outstanding requests must have been completed. */
void tsr_comm_destroy(tsr_comm *comm);

int tsr_comm_rank(const tsr_comm *comm);
int tsr_comm_size(const tsr_comm *comm);
const char *tsr_comm_name(const tsr_comm *comm);
/* Rank in the world communicator of this group's member `group_rank`. */
int tsr_comm_world_rank_of(const tsr_comm *comm, int group_rank);
tsr_comm_backend tsr_comm_backend_of(const tsr_comm *comm);
double tsr_comm_timeout_seconds(const tsr_comm *comm);
/* The MPI communicator underneath (every backend keeps one, for set-up and
 * for the watchdog). For code that must hand a communicator to an MPI-based
 * library such as parallel HDF5; never use it for the collectives above. */
MPI_Comm tsr_comm_mpi_handle(const tsr_comm *comm);

/* NCCL backend only: the CUDA stream (cudaStream_t) whose earlier work a
 * collective waits for and which waits for the collective's completion.
 * NULL (the default) is the legacy default stream. No-op on MPI. */
void tsr_comm_set_stream(tsr_comm *comm, void *cuda_stream);

/* ---- collectives; request == NULL: blocking ------------------------- */

/* recvbuf[i] = op over ranks of sendbuf[i], i < count. In place when
 * sendbuf == recvbuf. */
tsr_status tsr_comm_allreduce_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                 size_t count, tsr_comm_dtype dtype, tsr_comm_op op, tsr_comm *comm,
                                 tsr_comm_request **request);
#define tsr_comm_allreduce(...) tsr_comm_allreduce_at(TSR_HERE, __VA_ARGS__)

/* sendbuf holds size x recvcount elements; rank r receives the reduction
 * of block r. In place when sendbuf + r x recvcount == recvbuf (NCCL's
 * convention); otherwise the buffers must not overlap. */
tsr_status tsr_comm_reduce_scatter_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                      size_t recvcount, tsr_comm_dtype dtype, tsr_comm_op op,
                                      tsr_comm *comm, tsr_comm_request **request);
#define tsr_comm_reduce_scatter(...) tsr_comm_reduce_scatter_at(TSR_HERE, __VA_ARGS__)

/* recvbuf holds size x sendcount elements, block r from rank r. In place
 * when sendbuf == recvbuf + r x sendcount. */
tsr_status tsr_comm_allgather_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                 size_t sendcount, tsr_comm_dtype dtype, tsr_comm *comm,
                                 tsr_comm_request **request);
#define tsr_comm_allgather(...) tsr_comm_allgather_at(TSR_HERE, __VA_ARGS__)

/* Every rank's recvbuf gets root's sendbuf (sendbuf is read on root only;
 * sendbuf == recvbuf is fine). */
tsr_status tsr_comm_broadcast_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                 size_t count, tsr_comm_dtype dtype, int root, tsr_comm *comm,
                                 tsr_comm_request **request);
#define tsr_comm_broadcast(...) tsr_comm_broadcast_at(TSR_HERE, __VA_ARGS__)

/* root's recvbuf gets the reduction; recvbuf is ignored elsewhere. */
tsr_status tsr_comm_reduce_at(tsr_call_site site, const void *sendbuf, void *recvbuf, size_t count,
                              tsr_comm_dtype dtype, tsr_comm_op op, int root, tsr_comm *comm,
                              tsr_comm_request **request);
#define tsr_comm_reduce(...) tsr_comm_reduce_at(TSR_HERE, __VA_ARGS__)

/* count elements to and from each peer: block p of sendbuf goes to rank
 * p, block p of recvbuf comes from rank p. Buffers must not overlap. */
tsr_status tsr_comm_alltoall_at(tsr_call_site site, const void *sendbuf, void *recvbuf,
                                size_t count, tsr_comm_dtype dtype, tsr_comm *comm,
                                tsr_comm_request **request);
#define tsr_comm_alltoall(...) tsr_comm_alltoall_at(TSR_HERE, __VA_ARGS__)

/* Variable counts: sendcounts[p] elements from sendbuf + sdispls[p] go to
 * rank p, recvcounts[p] from rank p land at recvbuf + rdispls[p] (all in
 * elements; arrays of group size, copied at the call). */
tsr_status tsr_comm_alltoallv_at(tsr_call_site site, const void *sendbuf, const size_t *sendcounts,
                                 const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                                 const size_t *rdispls, tsr_comm_dtype dtype, tsr_comm *comm,
                                 tsr_comm_request **request);
#define tsr_comm_alltoallv(...) tsr_comm_alltoallv_at(TSR_HERE, __VA_ARGS__)

/* Point to point, for pipelines: each send is matched by the peer's recv
 * of the same count and dtype, in call order. */
tsr_status tsr_comm_send_at(tsr_call_site site, const void *buf, size_t count, tsr_comm_dtype dtype,
                            int peer, tsr_comm *comm, tsr_comm_request **request);
#define tsr_comm_send(...) tsr_comm_send_at(TSR_HERE, __VA_ARGS__)
tsr_status tsr_comm_recv_at(tsr_call_site site, void *buf, size_t count, tsr_comm_dtype dtype,
                            int peer, tsr_comm *comm, tsr_comm_request **request);
#define tsr_comm_recv(...) tsr_comm_recv_at(TSR_HERE, __VA_ARGS__)

/* A batch of sends and receives started together and completed by one
 * request (Megatron's batch_isend_irecv): no ordering deadlock between
 * the sends and receives of one batch. */
typedef struct tsr_comm_p2p {
    bool is_send;
    void *buf; /* read for a send, written for a recv */
    size_t count;
    tsr_comm_dtype dtype;
    int peer;
} tsr_comm_p2p;
tsr_status tsr_comm_batch_p2p_at(tsr_call_site site, const tsr_comm_p2p *ops, size_t n,
                                 tsr_comm *comm, tsr_comm_request **request);
#define tsr_comm_batch_p2p(...) tsr_comm_batch_p2p_at(TSR_HERE, __VA_ARGS__)

tsr_status tsr_comm_barrier_at(tsr_call_site site, tsr_comm *comm, tsr_comm_request **request);
#define tsr_comm_barrier(...) tsr_comm_barrier_at(TSR_HERE, __VA_ARGS__)

/* ---- requests -------------------------------------------------------- */

/* Waits for the operation (bounded by the watchdog), releases the handle
 * and sets *request to NULL. NULL *request is a no-op. */
tsr_status tsr_comm_wait_at(tsr_call_site site, tsr_comm_request **request);
#define tsr_comm_wait(...) tsr_comm_wait_at(TSR_HERE, __VA_ARGS__)
/* Completes requests[0..n) in order, every one even after a failure;
 * returns the first failure. */
tsr_status tsr_comm_wait_all_at(tsr_call_site site, tsr_comm_request **requests, size_t n);
#define tsr_comm_wait_all(...) tsr_comm_wait_all_at(TSR_HERE, __VA_ARGS__)
/* *done = whether the operation has completed; if so the handle is
 * released and *request set to NULL. The watchdog clock of a request
 * starts at its first wait or test. */
tsr_status tsr_comm_test(tsr_comm_request **request, bool *done);

/* ---- accounting ------------------------------------------------------ */

void tsr_comm_counters_get(const tsr_comm *comm, tsr_comm_counters *out);
void tsr_comm_counters_reset(tsr_comm *comm);
const char *tsr_comm_kind_name(tsr_comm_kind kind); /* "allreduce", ... */

/* ---- small pure helpers (tested without MPI) -------------------------- */

size_t tsr_comm_dtype_size(tsr_comm_dtype dtype); /* 0 if unknown */
const char *tsr_comm_dtype_name(tsr_comm_dtype dtype);
const char *tsr_comm_backend_name(tsr_comm_backend backend);
/* bf16 <-> fp32; fp32 -> bf16 rounds to nearest even, NaN stays NaN. */
float tsr_bf16_to_float(uint16_t h);
uint16_t tsr_float_to_bf16(float f);

/* The backend rule: NCCL when it is built and every rank has a GPU of its
 * own (ranks_on_node[r] <= gpus_on_node[r] for each world rank r, with at
 * least one GPU), MPI otherwise. choice MPI/NCCL forces one; forcing NCCL
 * where it cannot work is TSR_ERR_UNSUPPORTED with the reason. */
tsr_status tsr_comm_backend_decide(tsr_backend_choice choice, bool nccl_built, int world_size,
                                   const int *ranks_on_node, const int *gpus_on_node,
                                   tsr_comm_backend *out);

#ifdef __cplusplus
}
#endif

#endif /* TSR_COLLECTIVES_COMM_H */
