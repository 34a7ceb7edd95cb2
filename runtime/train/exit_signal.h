/*
 * exit_signal.h - the signals that ask a run to stop early
 * (--exit-signal-handler): SIGTERM (Slurm's preemption and time limit,
 * `scancel`, `kill`) and SIGUSR1 (Slurm's early warning, `sbatch
 * --signal=USR1@120`; Open MPI's mpirun forwards it to every rank).
 *
 * The handler only records the signal; the trainer looks at the end of
 * each iteration and every rank agrees before anyone stops.
 */
#ifndef TSR_RUNTIME_EXIT_SIGNAL_H
#define TSR_RUNTIME_EXIT_SIGNAL_H

/* Installs the handler (idempotent). 0, or -1 if sigaction failed. */
int tsr_exit_signal_install(void);

/* The last signal received since the install (SIGTERM or SIGUSR1), or 0. */
int tsr_exit_signal_received(void);

#endif /* TSR_RUNTIME_EXIT_SIGNAL_H */
