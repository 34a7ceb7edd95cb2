/*
 * cmd_slurm.c - `tessera slurm`: writes a ready sbatch script for a
 * training job (the text comes from slurm_script.c).
 *
 *   tessera slurm --nodes N --ntasks-per-node K [--gpus-per-node G]
 *                 [--cpus-per-node C] [--partition P] [--time T] [--account A]
 *                 [--job-name NAME] [--tessera PATH] [--output FILE]
 *                 -- train FLAGS...
 *
 * Bad input (a missing or non-numeric size, no "-- train ...", train flags
 * that do not fit N x K ranks, an --output that cannot be written) exits 2
 * with one message and writes nothing.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "data/file_check.h"
#include "flags.h"
#include "slurm_script.h"

typedef struct slurm_args {
    int nodes;
    int ntasks_per_node;
    int gpus_per_node;
    int cpus_per_node;
    const char *partition;
    const char *time;
    const char *account;
    const char *job_name;
    const char *tessera;
    const char *output;
} slurm_args;

static const tsr_flag slurm_flags[] = {
    {"--nodes", TSR_FLAG_INT, offsetof(slurm_args, nodes), 1, 1 << 20, NULL, "N",
     "nodes of the job (required)"},
    {"--ntasks-per-node", TSR_FLAG_INT, offsetof(slurm_args, ntasks_per_node), 1, 4096, NULL,
     "K", "ranks per node (required): one per GPU, or e.g. one per NUMA node on CPUs"},
    {"--gpus-per-node", TSR_FLAG_INT, offsetof(slurm_args, gpus_per_node), 0, 1024, NULL, "G",
     "GPUs per node to request (0: a CPU job)"},
    {"--cpus-per-node", TSR_FLAG_INT, offsetof(slurm_args, cpus_per_node), 1, 1 << 20, NULL,
     "C", "CPUs per node; sets --cpus-per-task C/K (default: whole nodes, divided at run time)"},
    {"--partition", TSR_FLAG_STRING, offsetof(slurm_args, partition), 0, 0, NULL, "P",
     "Slurm partition (default: the cluster's default)"},
    {"--time", TSR_FLAG_STRING, offsetof(slurm_args, time), 0, 0, NULL, "T",
     "time limit: minutes, HH:MM:SS or D-HH:MM:SS"},
    {"--account", TSR_FLAG_STRING, offsetof(slurm_args, account), 0, 0, NULL, "A",
     "Slurm account to charge (default: yours)"},
    {"--job-name", TSR_FLAG_STRING, offsetof(slurm_args, job_name), 0, 0, NULL, "NAME",
     "job name; the log is NAME-<jobid>.out"},
    {"--tessera", TSR_FLAG_STRING, offsetof(slurm_args, tessera), 0, 0, NULL, "PATH",
     "tessera binary the job runs (default: this one's absolute path)"},
    {"--output", TSR_FLAG_STRING, offsetof(slurm_args, output), 0, 0, NULL, "FILE",
     "write the script to FILE (made executable) instead of stdout"},
};

static const tsr_flag_table slurm_table = {"slurm", slurm_flags,
                                           sizeof slurm_flags / sizeof slurm_flags[0]};

static const slurm_args slurm_defaults = {0, 0, 0, 0, NULL, "01:00:00", NULL, "tessera", NULL,
                                          NULL};

static void print_help(void)
{
    puts("usage: tessera slurm --nodes N --ntasks-per-node K [flags] -- train FLAGS...\n\n"
         "writes an sbatch script that runs `tessera train FLAGS...` on N x K ranks\n"
         "(srun --mpi=pmix, one rank per task, tessera binds each rank); the train\n"
         "flags are checked for N x K ranks before anything is written\n\n"
         "example:\n"
         "  tessera slurm --nodes 4 --ntasks-per-node 8 --gpus-per-node 8 --time 02:00:00 \\\n"
         "      --output gpt.sbatch -- train --tensor-model-parallel-size 8 --num-layers 24\n"
         "  sbatch gpt.sbatch\n\nflags:");
    tsr_flags_print_help(&slurm_table, &slurm_defaults, stdout);
}

/* "tessera slurm <args without --output and --tessera>" for the script's
 * "remake" comment; NULL if it does not fit. */
static char *remake_line(int argc, char **argv)
{
    size_t size = 64;
    for (int i = 0; i < argc; i++)
        size += strlen(argv[i]) + 3;
    char *line = malloc(size);
    if (line == NULL)
        return NULL;
    size_t used = (size_t)snprintf(line, size, "tessera slurm");
    int in_flags = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            in_flags = 0;
        if (in_flags && (strcmp(argv[i], "--output") == 0 || strcmp(argv[i], "--tessera") == 0)) {
            i++;
            continue;
        }
        if (in_flags &&
            (strncmp(argv[i], "--output=", 9) == 0 || strncmp(argv[i], "--tessera=", 10) == 0))
            continue;
        const char *quote = strpbrk(argv[i], " \t\"$`\\*?") != NULL ? "'" : "";
        used += (size_t)snprintf(line + used, size - used, " %s%s%s", quote, argv[i], quote);
    }
    return line;
}

static tsr_status write_script(const tsr_slurm_job *job, const char *path)
{
    if (path == NULL)
        return tsr_slurm_script_write(job, stdout);
    /* validate before creating the file, so bad input leaves nothing behind */
    tsr_status st = tsr_slurm_job_validate(job);
    if (st == TSR_OK)
        st = tsr_file_check_output(path, "--output");
    if (st != TSR_OK)
        return st;
    FILE *out = fopen(path, "w");
    if (out == NULL)
        return tsr_error_set(TSR_ERR_IO, "cannot write --output %s: %s", path, strerror(errno));
    /* a device (--output /dev/null) is written to, never chmod'ed or
     * removed */
    struct stat info;
    int regular = fstat(fileno(out), &info) == 0 && S_ISREG(info.st_mode);
    st = tsr_slurm_script_write(job, out);
    if (st == TSR_OK && regular)
        fchmod(fileno(out), 0755);
    if (fclose(out) != 0 && st == TSR_OK)
        st = tsr_error_set(TSR_ERR_IO, "writing %s failed", path);
    if (st != TSR_OK && regular)
        remove(path);
    return st;
}

int tsr_cmd_slurm(int argc, char **argv)
{
    if (tsr_args_want_help(argc, argv)) {
        print_help();
        return 0;
    }
    slurm_args args = slurm_defaults;
    int rest = argc;
    tsr_status st = tsr_flags_parse(&slurm_table, &args, argc, argv, &rest);
    if (st == TSR_OK && args.nodes < 1)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--nodes is required: the number of nodes, e.g. --nodes 2");
    if (st == TSR_OK && args.ntasks_per_node < 1)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--ntasks-per-node is required: ranks per node, e.g. "
                           "--ntasks-per-node 8 for 8 GPUs per node");
    if (st == TSR_OK && (rest >= argc || strcmp(argv[rest], "train") != 0))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "the job's command is missing: end with '-- train FLAGS...', e.g. "
                           "'tessera slurm --nodes 2 --ntasks-per-node 4 -- train --num-layers "
                           "4'");
    if (st != TSR_OK)
        return tsr_report_error_once(0, "slurm", st);
    char self[4096];
    if (args.tessera == NULL) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            st = tsr_error_set(TSR_ERR_IO, "cannot find this binary's path; give --tessera PATH");
            return tsr_report_error_once(0, "slurm", st);
        }
        self[n] = '\0';
        args.tessera = self;
    }
    char *remake = remake_line(argc, argv);
    tsr_slurm_job job = {args.nodes,    args.ntasks_per_node, args.gpus_per_node,
                         args.cpus_per_node, args.partition, args.time, args.account,
                         args.job_name, args.tessera,       remake,
                         argc - rest - 1, argv + rest + 1};
    st = write_script(&job, args.output);
    free(remake);
    if (st != TSR_OK)
        return tsr_report_error_once(0, "slurm", st);
    if (args.output != NULL)
        fprintf(stderr, "tessera slurm: wrote %s; submit it with: sbatch %s\n", args.output,
                args.output);
    return 0;
}
