/*
 * checkpoint_watch.h - the watchdog of checkpoint saves and loads for
 * `tessera train` (tsr_checkpoint_watch, runtime/checkpoint/checkpoint.h).
 *
 * HDF5 makes its own MPI calls, outside tessera's collectives and their
 * watchdog, so a rank that stops during a save (a stuck node, a hung file
 * system, SIGSTOP) would leave the others waiting inside libhdf5 forever.
 * During each save and load every rank publishes its progress (tensors
 * written, checksummed or read) in an arrival window (collectives/
 * watchdog.h) and a thread watches its own: when this rank has made no
 * progress for --distributed-timeout-minutes, it reads every rank's
 * progress, names the ranks behind it and ends the job.
 *
 * Needs MPI_THREAD_MULTIPLE (the thread reads the window and aborts while
 * the rank is inside MPI); without it the watch is off.
 */
#ifndef TSR_LAUNCHER_CHECKPOINT_WATCH_H
#define TSR_LAUNCHER_CHECKPOINT_WATCH_H

/* Installs the watch for the rest of the process. */
void tsr_checkpoint_watch_install(double timeout_seconds, int mpi_thread_level);

#endif /* TSR_LAUNCHER_CHECKPOINT_WATCH_H */
