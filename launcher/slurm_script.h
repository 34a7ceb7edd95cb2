/*
 * slurm_script.h - the sbatch script that `tessera slurm` writes.
 *
 * A job is a layout (nodes x tasks per node, GPUs and CPUs per node), the
 * usual sbatch options and the `tessera train` flags. The script starts
 * every rank with srun --mpi=pmix (tessera reads SLURM_PROCID/LOCALID/
 * NODEID and binds each rank itself), first runs `tessera topo` so the log
 * shows each rank's node and real binding, then trains. Validation happens
 * here, before anything is written: the train flags are checked for the
 * job's world size, so a layout that cannot run is refused at generation
 * time rather than after a queue wait.
 *
 * Callers: cmd_slurm.c, the tests (the script text is a pure function of
 * the job, which is what lets examples/slurm/ be regenerated and diffed).
 */
#ifndef TSR_LAUNCHER_SLURM_SCRIPT_H
#define TSR_LAUNCHER_SLURM_SCRIPT_H

#include <stdio.h>

#include "tessera/status.h"

typedef struct tsr_slurm_job {
    int nodes;
    int ntasks_per_node;
    int gpus_per_node;     /* 0: CPU job */
    int cpus_per_node;     /* 0: unknown; the job takes whole nodes and divides at run time */
    const char *partition; /* NULL: the cluster's default */
    const char *time;      /* sbatch --time, e.g. "01:00:00" */
    const char *account;   /* NULL: the user's default */
    const char *job_name;
    const char *tessera;   /* path of the tessera binary written into the script */
    const char *command_line; /* shown as the way to remake the script; NULL: none */
    int train_argc;        /* the flags after "train" */
    char **train_argv;
} tsr_slurm_job;

/* Checks the job: sizes, the characters of names, the time format, and the
 * train flags for world size nodes x ntasks_per_node. TSR_ERR_INVALID_ARG
 * with a message naming the flag on failure. */
tsr_status tsr_slurm_job_validate(const tsr_slurm_job *job);

/* CPUs each task gets: cpus_per_node / ntasks_per_node, or 0 if the script
 * has to compute it at run time (cpus_per_node unknown). */
int tsr_slurm_cpus_per_task(const tsr_slurm_job *job);

/* Writes the script (validates first). */
tsr_status tsr_slurm_script_write(const tsr_slurm_job *job, FILE *out);

/* `tessera slurm`: flags -> job -> script on stdout or --output FILE. */
int tsr_cmd_slurm(int argc, char **argv);

#endif /* TSR_LAUNCHER_SLURM_SCRIPT_H */
