/*
 * bench_collectives.c - nccl-tests-style bandwidth table of every
 * collective, tessera's API and the raw MPI call side by side in one run.
 *
 *   mpirun -np N bench_collectives [--min-bytes B] [--max-bytes B]
 *          [--iters N] [--warmup N] [--ops allreduce,allgather,...]
 *
 * For each size (doubling from 8 B to 256 MiB by default) and each side it
 * times `iters` back-to-back blocking calls after `warmup` calls, three
 * times, and keeps the fastest mean (the slowest rank's); the two sides
 * alternate so that machine noise hits both. size is nccl-tests' size: the
 * whole buffer (the gathered one for all-gather, the input for
 * reduce-scatter, everything sent for all-to-all). algbw = size / time;
 * busbw = algbw x nccl-tests' factor: all-reduce 2(n-1)/n; reduce-scatter,
 * all-gather, all-to-all (n-1)/n; broadcast, reduce, sendrecv 1. The last
 * column is tessera's busbw over MPI's. fp32 throughout. Not a test.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "tessera/log.h"

typedef enum op_id { ALLREDUCE, REDUCE_SCATTER, ALLGATHER, BROADCAST, REDUCE, ALLTOALL, SENDRECV, N_OPS } op_id;

static const char *const op_names[N_OPS] = {"allreduce", "reduce_scatter", "allgather",
                                            "broadcast", "reduce", "alltoall", "sendrecv"};

typedef struct bench {
    tsr_comm *comm;
    MPI_Comm mpi;
    int rank, size;
    float *send, *recv;
} bench;

static double bus_factor(op_id op, int n)
{
    switch (op) {
    case ALLREDUCE:
        return 2.0 * (n - 1) / n;
    case REDUCE_SCATTER:
    case ALLGATHER:
    case ALLTOALL:
        return (double)(n - 1) / n;
    default:
        return 1.0;
    }
}

/* Elements per call argument for a total size of `bytes`. */
static size_t count_for(op_id op, size_t bytes, int n)
{
    size_t elems = bytes / sizeof(float);
    if (op == REDUCE_SCATTER || op == ALLGATHER || op == ALLTOALL)
        return elems / (size_t)n;
    return elems;
}

static void run_tsr(bench *b, op_id op, size_t c)
{
    tsr_status st = TSR_OK;
    int next = (b->rank + 1) % b->size, prev = (b->rank + b->size - 1) % b->size;
    switch (op) {
    case ALLREDUCE:
        st = tsr_comm_allreduce(b->send, b->recv, c, TSR_COMM_FP32, TSR_COMM_SUM, b->comm, NULL);
        break;
    case REDUCE_SCATTER:
        st = tsr_comm_reduce_scatter(b->send, b->recv, c, TSR_COMM_FP32, TSR_COMM_SUM, b->comm,
                                     NULL);
        break;
    case ALLGATHER:
        st = tsr_comm_allgather(b->send, b->recv, c, TSR_COMM_FP32, b->comm, NULL);
        break;
    case BROADCAST:
        st = tsr_comm_broadcast(b->send, b->send, c, TSR_COMM_FP32, 0, b->comm, NULL);
        break;
    case REDUCE:
        st = tsr_comm_reduce(b->send, b->recv, c, TSR_COMM_FP32, TSR_COMM_SUM, 0, b->comm, NULL);
        break;
    case ALLTOALL:
        st = tsr_comm_alltoall(b->send, b->recv, c, TSR_COMM_FP32, b->comm, NULL);
        break;
    case SENDRECV: {
        tsr_comm_p2p ops[2] = {{true, b->send, c, TSR_COMM_FP32, next},
                               {false, b->recv, c, TSR_COMM_FP32, prev}};
        st = tsr_comm_batch_p2p(ops, 2, b->comm, NULL);
        break;
    }
    default:
        break;
    }
    if (st != TSR_OK) {
        fprintf(stderr, "%s failed: %s\n", op_names[op], tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

static void run_mpi(bench *b, op_id op, size_t c)
{
    int n = (int)c, next = (b->rank + 1) % b->size, prev = (b->rank + b->size - 1) % b->size;
    switch (op) {
    case ALLREDUCE:
        MPI_Allreduce(b->send, b->recv, n, MPI_FLOAT, MPI_SUM, b->mpi);
        break;
    case REDUCE_SCATTER:
        MPI_Reduce_scatter_block(b->send, b->recv, n, MPI_FLOAT, MPI_SUM, b->mpi);
        break;
    case ALLGATHER:
        MPI_Allgather(b->send, n, MPI_FLOAT, b->recv, n, MPI_FLOAT, b->mpi);
        break;
    case BROADCAST:
        MPI_Bcast(b->send, n, MPI_FLOAT, 0, b->mpi);
        break;
    case REDUCE:
        MPI_Reduce(b->send, b->recv, n, MPI_FLOAT, MPI_SUM, 0, b->mpi);
        break;
    case ALLTOALL:
        MPI_Alltoall(b->send, n, MPI_FLOAT, b->recv, n, MPI_FLOAT, b->mpi);
        break;
    case SENDRECV:
        MPI_Sendrecv(b->send, n, MPI_FLOAT, next, 0, b->recv, n, MPI_FLOAT, prev, 0, b->mpi,
                     MPI_STATUS_IGNORE);
        break;
    default:
        break;
    }
}

/* Mean seconds per call on the slowest rank. */
static double time_side(bench *b, op_id op, size_t c, int tessera, int warmup, int iters)
{
    for (int i = 0; i < warmup; i++)
        tessera ? run_tsr(b, op, c) : run_mpi(b, op, c);
    MPI_Barrier(b->mpi);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++)
        tessera ? run_tsr(b, op, c) : run_mpi(b, op, c);
    double t = (MPI_Wtime() - t0) / iters, worst = 0;
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, b->mpi);
    return worst;
}

/* Whether `name` is one of the comma-separated entries of `list`. */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static size_t parse_bytes(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end && (*end == 'K' || *end == 'k'))
        v *= 1024;
    else if (end && (*end == 'M' || *end == 'm'))
        v *= 1024 * 1024;
    else if (end && (*end == 'G' || *end == 'g'))
        v *= 1024.0 * 1024 * 1024;
    return (size_t)v;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    size_t min_bytes = 8, max_bytes = (size_t)256 << 20;
    int iters = 20, warmup = 5;
    const char *ops = "allreduce,reduce_scatter,allgather,broadcast,reduce,alltoall,sendrecv";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--min-bytes") == 0)
            min_bytes = parse_bytes(argv[i + 1]);
        else if (strcmp(argv[i], "--max-bytes") == 0)
            max_bytes = parse_bytes(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ops") == 0)
            ops = argv[i + 1];
    }
    if (iters < 1)
        iters = 1;
    bench b;
    MPI_Comm_rank(MPI_COMM_WORLD, &b.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &b.size);
    tsr_log_configure(b.rank, b.size, TSR_LOG_WARN);
    tsr_comm_options opts = {TSR_BACKEND_MPI, 600.0, "world", NULL};
    if (tsr_comm_create_world(MPI_COMM_WORLD, &opts, &b.comm) != TSR_OK) {
        fprintf(stderr, "%s\n", tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &b.mpi);
    b.send = calloc(max_bytes / sizeof(float) + 1, sizeof(float));
    b.recv = calloc(max_bytes / sizeof(float) + 1, sizeof(float));
    if (b.send == NULL || b.recv == NULL) {
        fprintf(stderr, "cannot allocate 2 x %zu bytes\n", max_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < max_bytes / sizeof(float); i++)
        b.send[i] = (float)(i % 7);
    if (b.rank == 0)
        printf("# tessera collectives vs raw MPI, %d ranks, fp32, %d iters (+%d warm-up), best "
               "of 3\n# times in us, bandwidths in GB/s\n",
               b.size, iters, warmup);
    for (int op = 0; op < N_OPS; op++) {
        if (!listed(ops, op_names[op]))
            continue;
        if (b.rank == 0)
            printf("\n# %s\n#%12s %12s | %10s %8s %8s | %10s %8s %8s | %6s\n", op_names[op],
                   "size", "count", "tsr time", "algbw", "busbw", "mpi time", "algbw", "busbw",
                   "ratio");
        for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
            size_t c = count_for((op_id)op, bytes, b.size);
            if (c == 0)
                continue;
            size_t size = (op == REDUCE_SCATTER || op == ALLGATHER || op == ALLTOALL)
                       ? c * (size_t)b.size * sizeof(float)
                       : c * sizeof(float);
            double best_t = 1e30, best_m = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                double t = time_side(&b, (op_id)op, c, 1, rep == 0 ? warmup : 1, iters);
                double m = time_side(&b, (op_id)op, c, 0, rep == 0 ? warmup : 1, iters);
                best_t = t < best_t ? t : best_t;
                best_m = m < best_m ? m : best_m;
            }
            double f = bus_factor((op_id)op, b.size);
            double alg_t = (double)size / best_t * 1e-9, alg_m = (double)size / best_m * 1e-9;
            if (b.rank == 0)
                printf(" %12zu %12zu | %10.1f %8.3f %8.3f | %10.1f %8.3f %8.3f | %6.3f\n", size,
                       c, best_t * 1e6, alg_t, alg_t * f, best_m * 1e6, alg_m, alg_m * f,
                       alg_t / alg_m);
            if (bytes > max_bytes / 2)
                break;
        }
        fflush(stdout);
    }
    free(b.send);
    free(b.recv);
    MPI_Comm_free(&b.mpi);
    tsr_comm_destroy(b.comm);
    MPI_Finalize();
    return 0;
}
