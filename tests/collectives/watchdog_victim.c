/*
 * watchdog_victim.c - a small job that goes wrong on purpose, for the
 * watchdog's death tests (test_watchdog_*.sh).
 *
 *   watchdog_victim sleep|skip|other|nosplit|kill|stop VICTIM_RANK TIMEOUT_MINUTES [OPERATION]
 *
 * Every rank runs OPERATION (allreduce, the default; reduce_scatter,
 * allgather, alltoall; or sendrecv, a pipeline's exchange with the next and
 * previous rank) on a "tp" group (the world split in one group) six times,
 * then a barrier on the world; before the split the victim may sleep
 * (nosplit), never coming to it; or at round 3 it either sleeps outside
 * MPI, in computation (sleep), leaves the operation out and goes on
 * (skip), makes a barrier on tp instead (other), kills itself with SIGKILL
 * (kill), or stops itself with SIGSTOP (stop: alive, holding its
 * resources, never answering, as a rank stuck in the kernel or stopped by
 * a debugger). The other ranks must be ended by the watchdog with a
 * message naming the victim and what it is doing. Exits 0 only if the job
 * was (wrongly) allowed to finish.
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/comm.h"
#include "tessera/config.h"
#include "tessera/log.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr,
                "usage: %s sleep|skip|other|nosplit|kill|stop VICTIM_RANK TIMEOUT_MINUTES [OPERATION]\n",
                argv[0]);
        return 2;
    }
    const char *op = argc == 5 ? argv[4] : "allreduce";
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tsr_log_configure(rank, size, TSR_LOG_INFO);
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.backend = TSR_BACKEND_MPI;
    cfg.distributed_timeout_minutes = atof(argv[3]);
    tsr_comm_options opts;
    tsr_comm_options_from_config(&cfg, &opts);
    int victim = atoi(argv[2]);
    const char *how = argv[1];
    tsr_comm *world = NULL, *tp = NULL;
    if (tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world) != TSR_OK) {
        fprintf(stderr, "set-up failed: %s\n", tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    if (rank == victim && strcmp(how, "nosplit") == 0) {
        fprintf(stderr, "rank %d: sleeps before the split\n", rank);
        fflush(stderr);
        struct timespec t = {120, 0};
        nanosleep(&t, NULL);
    }
    if (tsr_comm_split(world, 0, rank, "tp", &tp) != TSR_OK) {
        fprintf(stderr, "set-up failed: %s\n", tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    enum { N = 16 };
    float *x = calloc((size_t)N * size, sizeof(float)), *y = calloc((size_t)N * size, sizeof(float));
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < N * size; i++)
            x[i] = (float)(rank + round);
        if (round == 3 && rank == victim) {
            fprintf(stderr, "rank %d: %s at round %d (%s)\n", rank, how, round, op);
            fflush(stderr);
            if (strcmp(how, "kill") == 0)
                raise(SIGKILL);
            if (strcmp(how, "stop") == 0)
                raise(SIGSTOP);
            if (strcmp(how, "sleep") == 0) {
                struct timespec t = {120, 0};
                nanosleep(&t, NULL); /* outside MPI, far past the timeout */
            }
            if (strcmp(how, "sleep") == 0 || strcmp(how, "skip") == 0)
                continue;
        }
        tsr_status st;
        if (round == 3 && rank == victim && strcmp(how, "other") == 0) {
            st = tsr_comm_barrier(tp, NULL);
        } else if (strcmp(op, "reduce_scatter") == 0) {
            st = tsr_comm_reduce_scatter(x, y, N, TSR_COMM_FP32, TSR_COMM_SUM, tp, NULL);
        } else if (strcmp(op, "allgather") == 0) {
            st = tsr_comm_allgather(x, y, N, TSR_COMM_FP32, tp, NULL);
        } else if (strcmp(op, "alltoall") == 0) {
            st = tsr_comm_alltoall(x, y, N, TSR_COMM_FP32, tp, NULL);
        } else if (strcmp(op, "sendrecv") == 0) { /* a pipeline stage: to the next, from the previous */
            tsr_comm_p2p ops[2] = {{true, x, N, TSR_COMM_FP32, (rank + 1) % size},
                                   {false, y, N, TSR_COMM_FP32, (rank + size - 1) % size}};
            st = tsr_comm_batch_p2p(ops, 2, tp, NULL);
        } else {
            st = tsr_comm_allreduce(x, x, N, TSR_COMM_FP32, TSR_COMM_SUM, tp, NULL);
        }
        if (st != TSR_OK) {
            fprintf(stderr, "rank %d: %s\n", rank, tsr_last_error());
            MPI_Abort(MPI_COMM_WORLD, 4);
        }
    }
    if (tsr_comm_barrier(world, NULL) != TSR_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 4);
    }
    free(x);
    free(y);
    tsr_comm_destroy(tp);
    tsr_comm_destroy(world);
    MPI_Finalize();
    return 0;
}
