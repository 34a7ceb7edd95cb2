/*
 * startup_watch.h - the watchdog of `tessera train`'s start-up, from the
 * parsed flags until the communicators exist.
 *
 * Open MPI's MPI_Init returns only once every rank has called it, so a rank
 * that stalls before it (a hung network file system under an .idx index, a
 * stopped process) would keep every other rank inside MPI_Init forever, in
 * silence. MPI cannot help yet: this watch is one thread per process that
 * knows only its own phase. A rank that spends more than
 * --distributed-timeout-minutes in a phase of its own work names itself and
 * the phase on stderr and ends with exit code 1 (mpirun then ends the job).
 * A rank that only waits (in MPI_Init, or in the MPI set-up after it) waits
 * the timeout plus a grace of min(timeout, 10 s) before it speaks, so that
 * the rank really stuck is the one that explains, and so that the
 * collectives' watchdog, which bounds the splits of communicator set-up by
 * the timeout alone, names a missing rank first where it can (the set-up
 * phase waits 15 s more, the longest that report takes).
 *
 * Each phase has its own clock: a phase entered restarts it. Once the
 * communicators exist the collectives' watchdog takes over
 * (collectives/watchdog.h).
 *
 * Caller: cmd_train.c, which creates, advances and destroys the watch on
 * the main thread; a NULL watch (no timeout, no memory) is accepted
 * everywhere and watches nothing.
 *
 * Test hook: with TSR_TEST_STALL_DATASET_RANK=R in the environment, world
 * rank R sleeps TSR_TEST_STALL_SECONDS (default 60) on entering
 * TSR_STARTUP_OPENING_DATASET, as if its file system had hung there; it
 * prints its pid first, for a test that stops it outright
 * (tests/launcher/startup_stall_test.sh).
 */
#ifndef TSR_LAUNCHER_STARTUP_WATCH_H
#define TSR_LAUNCHER_STARTUP_WATCH_H

typedef enum tsr_startup_phase {
    TSR_STARTUP_CHECKING_PATHS = 0, /* --save, --load, --metrics-file (train_preflight.h) */
    TSR_STARTUP_OPENING_DATASET,    /* --data-path: .idx indexes, HDF5 token files */
    TSR_STARTUP_PREPARING_MODEL,    /* the spec, a --model-plugin's dlopen, the memory plan */
    TSR_STARTUP_BINDING,            /* hwloc's topology and the CPU binding */
    TSR_STARTUP_MPI_INIT,           /* waits for every rank to start */
    TSR_STARTUP_MPI_SETUP,          /* node discovery, communicators: waits for every rank */
    TSR_STARTUP_PHASE_COUNT
} tsr_startup_phase;

typedef struct tsr_startup_watch tsr_startup_watch;

/* Starts watching world rank `world_rank` (from the launcher's environment)
 * in TSR_STARTUP_CHECKING_PATHS. NULL if timeout_seconds <= 0 or out of
 * memory; if the thread cannot start, a warning, and phases are only
 * recorded. */
tsr_startup_watch *tsr_startup_watch_create(double timeout_seconds, int world_rank);

/* Enters `phase`; detail (a path, may be NULL) is copied into the message. */
void tsr_startup_watch_enter(tsr_startup_watch *watch, tsr_startup_phase phase,
                             const char *detail);

/* Stops the thread and joins it; later calls do nothing. */
void tsr_startup_watch_stop(tsr_startup_watch *watch);

/* Stops the watch if it still runs, and frees it. */
void tsr_startup_watch_destroy(tsr_startup_watch *watch);

#endif /* TSR_LAUNCHER_STARTUP_WATCH_H */
