/*
 * slurm_script.c - the text of the generated sbatch script (slurm_script.h).
 *
 * Every line a user may want to change carries a comment saying why it is
 * there. The text depends only on the job, never on the machine that
 * generates it, so checked-in examples can be regenerated and compared.
 */
#include "slurm_script.h"

#include <ctype.h>
#include <string.h>

#include "tessera/config.h"
#include "train_flags.h"
#include "train_supported.h"

/* Characters Slurm names (partition, account, job name) are made of. */
static int is_plain_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && strchr("_.,+-", *s) == NULL)
            return 0;
    return 1;
}

/* sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. */
static int is_slurm_time(const char *s)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return 0;
    int colons = 0, dashes = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == ':') {
            colons++;
            if (!isdigit((unsigned char)p[1]))
                return 0;
        } else if (*p == '-') {
            dashes++;
            if (colons > 0 || !isdigit((unsigned char)p[1]))
                return 0;
        } else if (!isdigit((unsigned char)*p)) {
            return 0;
        }
    }
    return dashes <= 1 && colons <= 2;
}

tsr_status tsr_slurm_job_validate(const tsr_slurm_job *job)
{
    if (job->nodes < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--nodes is required: the number of nodes, e.g. --nodes 2");
    if (job->ntasks_per_node < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--ntasks-per-node is required: ranks per node, e.g. one per GPU "
                             "(--ntasks-per-node 8) or one per NUMA node on CPUs");
    if (job->gpus_per_node < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--gpus-per-node must be 0 or more");
    if (job->cpus_per_node != 0 && job->cpus_per_node < job->ntasks_per_node)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--cpus-per-node %d is less than --ntasks-per-node %d; every task "
                             "needs at least one CPU",
                             job->cpus_per_node, job->ntasks_per_node);
    if (job->partition != NULL && !is_plain_name(job->partition))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--partition '%s' is not a Slurm partition name (letters, digits, "
                             "'_', '.', '-', ',')",
                             job->partition);
    if (job->account != NULL && !is_plain_name(job->account))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--account '%s' is not a Slurm account name (letters, digits, "
                             "'_', '.', '-')",
                             job->account);
    if (!is_plain_name(job->job_name))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--job-name '%s' may hold only letters, digits, '_', '.', '-'",
                             job->job_name != NULL ? job->job_name : "");
    if (!is_slurm_time(job->time))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--time '%s' is not a Slurm time limit; use minutes, HH:MM:SS or "
                             "D-HH:MM:SS, e.g. --time 01:30:00",
                             job->time != NULL ? job->time : "");
    if (job->tessera == NULL || *job->tessera == '\0' || strchr(job->tessera, '\'') != NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--tessera needs the path of the tessera binary (without quotes)");
    if (job->train_argc < 0 || (job->train_argc > 0 && job->train_argv == NULL))
        return tsr_error_set(TSR_ERR_INTERNAL, "train arguments are missing");
    int64_t world = (int64_t)job->nodes * job->ntasks_per_node;
    if (world > 1 << 24)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%d nodes x %d tasks is too many ranks",
                             job->nodes, job->ntasks_per_node);
    tsr_config cfg;
    tsr_status st = tsr_train_config_from_args(&cfg, job->train_argc, job->train_argv, (int)world);
    if (st == TSR_OK)
        st = tsr_train_check_supported(&cfg, (int)world);
    if (st != TSR_OK) {
        char why[512]; /* tsr_error_set overwrites the message it would read */
        snprintf(why, sizeof why, "%s", tsr_last_error());
        return tsr_error_set(st, "the train flags after '--' do not fit %d node(s) x %d task(s) "
                                 "= %lld rank(s): %s",
                             job->nodes, job->ntasks_per_node, (long long)world, why);
    }
    return TSR_OK;
}

int tsr_slurm_cpus_per_task(const tsr_slurm_job *job)
{
    if (job->cpus_per_node <= 0 || job->ntasks_per_node <= 0)
        return 0;
    return job->cpus_per_node / job->ntasks_per_node;
}

/* Writes one shell word, quoted only when it has to be. */
static void put_word(FILE *out, const char *word)
{
    int plain = *word != '\0';
    for (const char *p = word; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr("_./:=,+-@%^", *p) == NULL)
            plain = 0;
    if (plain) {
        fputs(word, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = word; *p != '\0'; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

/* The --bind value among the train flags, so that the report step shows
 * the binding training will have. */
static const char *train_bind(const tsr_slurm_job *job)
{
    const char *bind = "core";
    for (int i = 0; i < job->train_argc; i++) {
        const char *a = job->train_argv[i];
        if (strcmp(a, "--bind") == 0 && i + 1 < job->train_argc)
            bind = job->train_argv[i + 1];
        else if (strncmp(a, "--bind=", 7) == 0)
            bind = a + 7;
    }
    return bind;
}

/* The --save directory among the train flags (NULL: none), and
 * --train-iters, for the requeue step. */
static const char *train_save(const tsr_slurm_job *job, int64_t *train_iters)
{
    tsr_config cfg;
    int world = job->nodes * job->ntasks_per_node;
    if (tsr_train_config_from_args(&cfg, job->train_argc, job->train_argv, world) != TSR_OK)
        return NULL; /* validated before: not reached */
    *train_iters = cfg.train_iters;
    return cfg.save;
}

/* Whether train argument i is --load or its value (the script decides
 * what to load, see write_body). */
static int is_load_arg(const tsr_slurm_job *job, int i)
{
    const char *a = job->train_argv[i];
    if (strcmp(a, "--load") == 0 || strncmp(a, "--load=", 7) == 0)
        return 1;
    return i > 0 && strcmp(job->train_argv[i - 1], "--load") == 0;
}

static int has_arg(const tsr_slurm_job *job, const char *flag)
{
    for (int i = 0; i < job->train_argc; i++)
        if (strcmp(job->train_argv[i], flag) == 0)
            return 1;
    return 0;
}

/* save: the --save directory of the train flags, or NULL */
static void write_header(const tsr_slurm_job *job, const char *save, FILE *out)
{
    int world = job->nodes * job->ntasks_per_node;
    int cpt = tsr_slurm_cpus_per_task(job);
    fputs("#!/bin/bash\n", out);
    fprintf(out, "# %s - a tessera training job for Slurm, written by `tessera slurm`.\n",
            job->job_name);
    fputs("#\n"
          "#   submit:  sbatch THIS_FILE          (or: TESSERA=/path/to/tessera sbatch THIS_FILE)\n"
          "#   watch:   squeue --me; tail -f <job-name>-<job-id>.out\n"
          "#   cancel:  scancel <job-id>\n",
          out);
    if (job->command_line != NULL)
        fprintf(out, "#   remake:  %s\n", job->command_line);
    fprintf(out,
            "#\n"
            "# Layout: %d node(s) x %d task(s) per node = %d rank(s), one rank per task.\n",
            job->nodes, job->ntasks_per_node, world);
    if (job->gpus_per_node > 0)
        fprintf(out,
                "# GPUs: %d per node; local rank i takes GPU i in PCI bus order%s.\n",
                job->gpus_per_node,
                job->ntasks_per_node > job->gpus_per_node
                    ? " (more ranks than GPUs: ranks share GPUs and talk through MPI)"
                    : "");
    if (cpt > 0)
        fprintf(out, "# CPUs: %d per node, %d per task.\n", job->cpus_per_node, cpt);
    else
        fputs("# CPUs: the job takes whole nodes (--exclusive) and each task gets\n"
              "# SLURM_CPUS_ON_NODE / tasks-per-node of them (give --cpus-per-node to\n"
              "# `tessera slurm` to fix the number instead).\n",
              out);
    fputs("# tessera binds every rank itself (hwloc: cores packed by NUMA node, or the\n"
          "# cores near its GPU; --bind core|numa|none) and sets its OpenMP/BLAS threads\n"
          "# to its core count, so srun is asked not to bind (--cpu-bind=none).\n"
          "# See docs/launcher.md.\n",
          out);
    fprintf(out, "#SBATCH --job-name=%s\n", job->job_name);
    fprintf(out, "#SBATCH --nodes=%d\n", job->nodes);
    fprintf(out, "#SBATCH --ntasks-per-node=%d\n", job->ntasks_per_node);
    if (cpt > 0)
        fprintf(out, "#SBATCH --cpus-per-task=%d\n", cpt);
    else
        fputs("#SBATCH --exclusive\n", out);
    if (job->gpus_per_node > 0)
        fprintf(out, "#SBATCH --gpus-per-node=%d\n", job->gpus_per_node);
    if (job->partition != NULL)
        fprintf(out, "#SBATCH --partition=%s\n", job->partition);
    if (job->account != NULL)
        fprintf(out, "#SBATCH --account=%s\n", job->account);
    fprintf(out, "#SBATCH --time=%s\n", job->time);
    fputs("#SBATCH --output=%x-%j.out\n", out);
    if (save != NULL)
        fputs("# Time limit and preemption: Slurm sends USR1 to every rank 120 s before the\n"
              "# limit, and TERM when it preempts the job; tessera (--exit-signal-handler)\n"
              "# finishes the iteration, saves a checkpoint and exits 0. Step 3 then\n"
              "# requeues the job, which resumes from that checkpoint; the log is appended.\n"
              "#SBATCH --signal=USR1@120\n"
              "#SBATCH --requeue\n"
              "#SBATCH --open-mode=append\n",
              out);
}

/* save, iters: the --save directory (or NULL) and --train-iters */
static void write_body(const tsr_slurm_job *job, const char *save, int64_t iters, FILE *out)
{
    int cpt = tsr_slurm_cpus_per_task(job);
    fputs("set -euo pipefail\n\n", out);
    fputs("# The tessera binary, at the same path on every node.\n", out);
    fprintf(out, "TESSERA=${TESSERA:-'%s'}\n\n", job->tessera);
    fputs("# Since Slurm 22.05 srun no longer inherits sbatch's --cpus-per-task: pass it.\n",
          out);
    if (cpt > 0)
        fprintf(out, "CPUS_PER_TASK=%d\n\n", cpt);
    else
        fputs("CPUS_PER_TASK=$(( SLURM_CPUS_ON_NODE / SLURM_NTASKS_PER_NODE ))\n\n", out);
    if (job->gpus_per_node > 0)
        fputs("# CUDA numbers GPUs in PCI bus order, the order tessera assigns them in.\n"
              "export CUDA_DEVICE_ORDER=PCI_BUS_ID\n\n",
              out);
    if (job->nodes > 1)
        fputs("# Emulated nodes (several Slurm nodes on one host, as in containers and CI)\n"
              "# share one hostname, and Open MPI names its shared-memory segments after the\n"
              "# hostname and the local rank, so they collide across such \"nodes\". Only\n"
              "# then, use TCP over loopback. Real nodes have their own hostnames: skipped.\n"
              "hosts=$(srun --nodes=\"$SLURM_JOB_NUM_NODES\" --ntasks=\"$SLURM_JOB_NUM_NODES\" "
              "--ntasks-per-node=1 \\\n"
              "  --cpus-per-task=\"$CPUS_PER_TASK\" hostname | sort -u | wc -l)\n"
              "if [ \"$hosts\" -lt \"$SLURM_JOB_NUM_NODES\" ]; then\n"
              "  echo \"tessera job: $SLURM_JOB_NUM_NODES nodes on $hosts host(s): Open MPI "
              "uses TCP on loopback\"\n"
              "  export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo "
              "OMPI_MCA_oob_tcp_if_include=lo\n"
              "fi\n\n",
              out);
    fputs("# PMIx gives every rank its place; tessera reads SLURM_PROCID, SLURM_LOCALID and\n"
          "# SLURM_NODEID. One failing rank ends the step instead of leaving the rest hanging.\n"
          "srun_args=(--mpi=pmix --cpu-bind=none --cpus-per-task=\"$CPUS_PER_TASK\" "
          "--kill-on-bad-exit=1)\n\n",
          out);
    fputs("# 1. Where each rank runs: node, cores, NUMA node and GPU, read back from the OS\n"
          "#    (\"tessera bind:\" lines, one per rank).\n",
          out);
    fputs("srun \"${srun_args[@]}\" \"$TESSERA\" topo --bind ", out);
    put_word(out, train_bind(job));
    if (save != NULL) {
        fputs("\n\n# Resume from the --save directory once it holds a checkpoint (a requeued\n"
              "# job); the first run loads what the flags say, if anything.\n"
              "load=(",
              out);
        for (int i = 0; i < job->train_argc; i++)
            if (is_load_arg(job, i)) {
                if (strncmp(job->train_argv[i], "--load=", 7) == 0) {
                    fputs("--load ", out);
                    put_word(out, job->train_argv[i] + 7);
                } else {
                    put_word(out, job->train_argv[i]);
                }
                if (strcmp(job->train_argv[i], "--load") == 0)
                    fputc(' ', out);
            }
        fputs(")\nif [ -f ", out);
        put_word(out, save);
        fputs("/latest_checkpointed_iteration.txt ]; then load=(--load ", out);
        put_word(out, save);
        fputs("); fi", out);
    }
    fputs("\n\n# 2. Training.\n", out);
    fputs("srun \"${srun_args[@]}\" \"$TESSERA\" train", out);
    int first = 1;
    for (int i = 0; i < job->train_argc; i++) {
        const char *a = job->train_argv[i];
        if (save != NULL && is_load_arg(job, i))
            continue;
        /* one flag per line, with its value if it has one */
        if (strncmp(a, "--", 2) == 0 || first)
            fputs(" \\\n  ", out);
        else
            fputc(' ', out);
        first = 0;
        put_word(out, a);
    }
    if (save != NULL) {
        if (!has_arg(job, "--exit-signal-handler"))
            fputs(" \\\n  --exit-signal-handler", out);
        fputs(" \\\n  \"${load[@]}\"", out);
    }
    fputc('\n', out);
    if (save == NULL)
        return;
    fputs("\n# 3. Stopped before the last iteration (the signals above): requeue, and the\n"
          "#    next run resumes from the checkpoint it saved.\n"
          "saved=$(cat ",
          out);
    put_word(out, save);
    fprintf(out,
            "/latest_checkpointed_iteration.txt 2>/dev/null || echo 0)\n"
            "if [ \"$saved\" -lt %lld ]; then\n"
            "  echo \"tessera job: stopped at iteration $saved of %lld; requeueing\"\n"
            "  scontrol requeue \"$SLURM_JOB_ID\"\n"
            "fi\n",
            (long long)iters, (long long)iters);
}

tsr_status tsr_slurm_script_write(const tsr_slurm_job *job, FILE *out)
{
    tsr_status st = tsr_slurm_job_validate(job);
    if (st != TSR_OK)
        return st;
    int64_t iters = 0;
    const char *save = train_save(job, &iters);
    write_header(job, save, out);
    write_body(job, save, iters, out);
    if (ferror(out))
        return tsr_error_set(TSR_ERR_IO, "writing the sbatch script failed");
    return TSR_OK;
}
