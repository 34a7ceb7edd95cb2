/*
 * watchdog_victim.c - a small job that goes wrong on purpose, for the
 * watchdog's death tests (test_watchdog_*.sh).
 *
 *   watchdog_victim skip|kill VICTIM_RANK TIMEOUT_MINUTES
 *
 * Every rank runs all-reduces on a "tp" group (the world split in one
 * group); at round 3 the victim either skips its all-reduce and sleeps
 * outside MPI (skip), or kills itself with SIGKILL (kill). The other ranks
 * must be ended by the watchdog with a message naming the victim. Exits 0
 * only if the job was (wrongly) allowed to finish.
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
    if (argc != 4) {
        fprintf(stderr, "usage: %s skip|kill VICTIM_RANK TIMEOUT_MINUTES\n", argv[0]);
        return 2;
    }
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
    tsr_comm *world = NULL, *tp = NULL;
    if (tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world) != TSR_OK ||
        tsr_comm_split(world, 0, rank, "tp", &tp) != TSR_OK) {
        fprintf(stderr, "set-up failed: %s\n", tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    int victim = atoi(argv[2]);
    bool kill_it = strcmp(argv[1], "kill") == 0;
    float x[16];
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 16; i++)
            x[i] = (float)(rank + round);
        if (round == 3 && rank == victim) {
            fprintf(stderr, "rank %d: %s at round %d\n", rank, kill_it ? "killing myself" : "skipping the all-reduce", round);
            fflush(stderr);
            if (kill_it)
                raise(SIGKILL);
            struct timespec t = {120, 0};
            nanosleep(&t, NULL); /* outside MPI, far past the timeout */
            continue;
        }
        if (tsr_comm_allreduce(x, x, 16, TSR_COMM_FP32, TSR_COMM_SUM, tp, NULL) != TSR_OK) {
            fprintf(stderr, "rank %d: %s\n", rank, tsr_last_error());
            MPI_Abort(MPI_COMM_WORLD, 4);
        }
    }
    tsr_comm_destroy(tp);
    tsr_comm_destroy(world);
    MPI_Finalize();
    return 0;
}
