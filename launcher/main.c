/*
 * main.c - the `tessera` command: dispatches to a subcommand.
 */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "rank_env.h"
#include "slurm_script.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"train", tsr_cmd_train, "train a transformer language model (under mpirun/srun or alone)"},
    {"topo", tsr_cmd_topo, "print the machine topology and the rank binding it implies"},
    {"preprocess", tsr_cmd_preprocess, "tokenize text into Megatron .bin/.idx training data"},
    {"convert", tsr_cmd_convert, "convert Hugging Face GPT-2/LLaMA weights to and from checkpoints"},
    {"plan", tsr_cmd_plan, "every layout of N devices: each device's memory, the iteration time"},
    {"calibrate", tsr_cmd_calibrate, "measure this machine into a cluster file for --cluster"},
    {"generate", tsr_cmd_generate, "continue prompts with a checkpoint's model (greedy or sampled, KV cache)"},
    {"slurm", tsr_cmd_slurm, "write an sbatch script that trains on a Slurm cluster"},
    {"version", tsr_cmd_version, "print the version and the libraries this build uses"},
};

#define SUBCOMMAND_COUNT (sizeof subcommands / sizeof subcommands[0])

static void print_usage(FILE *out)
{
    fputs("usage: tessera <command> [flags]\n\ncommands:\n", out);
    for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fputs("\nrun 'tessera <command> --help' for the flags of a command\n", out);
}

int tsr_args_want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

/* Only rank 0 exits non-zero: mpirun kills the whole job as soon as any
 * rank exits non-zero, which could take rank 0 down before its message is
 * written. The launcher still returns rank 0's exit code. */
int tsr_report_error_once(int rank, const char *command, tsr_status status)
{
    if (rank != 0)
        return 0;
    fprintf(stderr, "tessera %s: error: %s\n", command, tsr_last_error());
    fflush(stderr);
    return tsr_status_exit_code(status);
}

int tsr_report_mpi_outcome(int rank, const char *command, tsr_status status)
{
    int failed = status != TSR_OK, any_failed = 0, rank0_failed = failed;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Bcast(&rank0_failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (failed && (rank == 0 || !rank0_failed))
        fprintf(stderr, "tessera %s: error on rank %d: %s\n", command, rank, tsr_last_error());
    if (!any_failed)
        return 0;
    return tsr_status_exit_code(status == TSR_OK ? TSR_ERR_COMM : status);
}

/* Threads that spin while they wait take the cores from the threads that
 * have work. OpenMP threads spinning after a parallel region slow the next
 * sgemm (on a 2-core machine the same training step runs 2.5x faster when
 * they sleep instead); OpenBLAS's threads, which yield in a loop for about
 * 2^28 cycles after each sgemm by default, slow the element-wise kernels
 * between sgemms (7% of the tiny benchmark model's step). Both libraries
 * read these settings once, when they load, so they are set in the
 * environment and the binary re-executed (a millisecond, before anything
 * else happens). Settings the user made are kept. */
static void prefer_sleeping_threads(char **argv)
{
    bool set_omp = getenv("OMP_WAIT_POLICY") == NULL && getenv("GOMP_SPINCOUNT") == NULL &&
                   setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
    bool set_blas = getenv("OPENBLAS_THREAD_TIMEOUT") == NULL &&
                    getenv("GOTO_THREAD_TIMEOUT") == NULL &&
                    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0; /* 2^4 cycles, the minimum */
    bool changed = set_omp || set_blas;
    if (!changed)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): the libraries have loaded with their
     * defaults, so the environment must not claim otherwise (the start-up
     * log reports it) */
    if (set_omp)
        unsetenv("OMP_WAIT_POLICY");
    if (set_blas)
        unsetenv("OPENBLAS_THREAD_TIMEOUT");
}

int main(int argc, char **argv)
{
    prefer_sleeping_threads(argv);
    int rank = tsr_rank_info_from_env().rank;
    if (argc < 2) {
        if (rank == 0)
            print_usage(stderr);
        return rank == 0 ? 2 : 0; /* see tsr_report_error_once */
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        if (rank == 0)
            print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0)
        return tsr_cmd_version(0, NULL);
    for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
        if (strcmp(name, subcommands[i].name) == 0)
            return subcommands[i].run(argc - 2, argv + 2);
    if (rank == 0) {
        fprintf(stderr, "tessera: error: unknown command '%s'; commands are:", name);
        for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
            fprintf(stderr, " %s", subcommands[i].name);
        fputs(" (see 'tessera --help')\n", stderr);
    }
    return rank == 0 ? 2 : 0; /* see tsr_report_error_once */
}
