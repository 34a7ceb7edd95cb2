/*
 * commands.h - the subcommands of the `tessera` binary.
 *
 * Each takes the arguments after its name and returns the process exit
 * code: 0 success, 2 bad input (printed once, by rank 0, the only rank that
 * then exits non-zero), 1 other failure.
 */
#ifndef TSR_LAUNCHER_COMMANDS_H
#define TSR_LAUNCHER_COMMANDS_H

#include "tessera/status.h"

int tsr_cmd_train(int argc, char **argv);
int tsr_cmd_topo(int argc, char **argv);
int tsr_cmd_version(int argc, char **argv);
int tsr_cmd_preprocess(int argc, char **argv);
int tsr_cmd_convert(int argc, char **argv);
int tsr_cmd_generate(int argc, char **argv);
int tsr_cmd_plan(int argc, char **argv);
int tsr_cmd_calibrate(int argc, char **argv);

/* True if argv holds -h or --help before any "--". */
int tsr_args_want_help(int argc, char **argv);

/* Prints "tessera: error: <message>" on rank 0 only and returns the exit
 * code for `status` there, 0 on the other ranks (so that mpirun does not
 * end the job before rank 0 has printed). Used for every error found
 * before MPI starts. */
int tsr_report_error_once(int rank, const char *command, tsr_status status);

/* After a command's work under MPI (collective over MPI_COMM_WORLD, before
 * MPI_Finalize): whether any rank failed; the failure is printed by rank 0
 * if it failed, else by each rank that did. Returns the exit code the
 * command ends with (0: every rank succeeded). */
int tsr_report_mpi_outcome(int rank, const char *command, tsr_status status);

#endif /* TSR_LAUNCHER_COMMANDS_H */
