/*
 * test_slurm_script.c - validation and text of the generated sbatch
 * script. Whole-script comparisons live in check_examples.sh (the checked
 * examples); here, each rule is checked on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slurm_script.h"

static char *train_ok[] = {"--num-layers", "2", "--hidden-size", "32", "--num-attention-heads",
                           "4", "--seq-length", "16", "--tensor-model-parallel-size", "2"};

static tsr_slurm_job base_job(void)
{
    tsr_slurm_job job = {2, 2, 0, 0, NULL, "00:10:00", NULL, "tessera", "/opt/tessera/bin/tessera",
                         NULL, (int)(sizeof train_ok / sizeof train_ok[0]), train_ok};
    return job;
}

/* The script as a malloc'ed string, or NULL if writing failed. */
static char *script_of(const tsr_slurm_job *job)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    tsr_status st = tsr_slurm_script_write(job, out);
    fclose(out);
    if (st != TSR_OK) {
        free(text);
        return NULL;
    }
    return text;
}

static int has(const char *text, const char *line)
{
    if (strstr(text, line) != NULL)
        return 1;
    fprintf(stderr, "  missing: %s\n", line);
    return 0;
}

static void test_cpu_job_takes_whole_nodes(void)
{
    tsr_slurm_job job = base_job();
    char *s = script_of(&job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(strncmp(s, "#!/bin/bash\n", 12), 0);
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --nodes=2\n"));
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --ntasks-per-node=2\n"));
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --exclusive\n"));
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --time=00:10:00\n"));
    CU_ASSERT_TRUE(has(s, "CPUS_PER_TASK=$(( SLURM_CPUS_ON_NODE / SLURM_NTASKS_PER_NODE ))"));
    CU_ASSERT_TRUE(has(s, "--mpi=pmix"));
    CU_ASSERT_TRUE(has(s, "\"$TESSERA\" topo --bind core\n"));
    CU_ASSERT_TRUE(has(s, "\"$TESSERA\" train \\\n  --num-layers 2 \\\n  --hidden-size 32"));
    CU_ASSERT_TRUE(has(s, "TESSERA=${TESSERA:-'/opt/tessera/bin/tessera'}"));
    CU_ASSERT_TRUE(has(s, "OMPI_MCA_btl=self,tcp"));
    CU_ASSERT_PTR_NULL(strstr(s, "--gpus-per-node"));
    CU_ASSERT_PTR_NULL(strstr(s, "CUDA_DEVICE_ORDER"));
    CU_ASSERT_PTR_NULL(strstr(s, "--partition"));
    CU_ASSERT_PTR_NULL(strstr(s, "--account"));
    free(s);
}

static void test_gpu_job_with_fixed_cpus(void)
{
    tsr_slurm_job job = base_job();
    job.nodes = 1;
    job.ntasks_per_node = 4;
    job.gpus_per_node = 4;
    job.cpus_per_node = 64;
    job.partition = "gpu";
    job.account = "proj-42";
    char *s = script_of(&job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --cpus-per-task=16\n"));
    CU_ASSERT_TRUE(has(s, "\nCPUS_PER_TASK=16\n"));
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --gpus-per-node=4\n"));
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --partition=gpu\n"));
    CU_ASSERT_TRUE(has(s, "\n#SBATCH --account=proj-42\n"));
    CU_ASSERT_TRUE(has(s, "\nexport CUDA_DEVICE_ORDER=PCI_BUS_ID\n"));
    CU_ASSERT_PTR_NULL(strstr(s, "--exclusive"));
    /* one node: no emulated-node check */
    CU_ASSERT_PTR_NULL(strstr(s, "OMPI_MCA_btl"));
    CU_ASSERT_EQUAL(tsr_slurm_cpus_per_task(&job), 16);
    free(s);
}

static void test_bind_flag_reaches_report_step_and_quoting(void)
{
    char *train[] = {"--tensor-model-parallel-size", "2", "--bind=numa", "--data-path",
                     "/data/my corpus"};
    tsr_slurm_job job = base_job();
    job.train_argc = 5;
    job.train_argv = train;
    char *s = script_of(&job);
    if (s == NULL)
        fprintf(stderr, "  %s\n", tsr_last_error());
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(has(s, "\"$TESSERA\" topo --bind numa\n"));
    CU_ASSERT_TRUE(has(s, "  --data-path '/data/my corpus'\n"));
    free(s);
}

static void expect_invalid(const tsr_slurm_job *job, const char *words)
{
    CU_ASSERT_EQUAL(tsr_slurm_job_validate(job), TSR_ERR_INVALID_ARG);
    if (strstr(tsr_last_error(), words) == NULL) {
        fprintf(stderr, "  message '%s' lacks '%s'\n", tsr_last_error(), words);
        CU_FAIL("message does not name the problem");
    }
    char *s = script_of(job);
    CU_ASSERT_PTR_NULL(s);
    free(s);
}

static void test_bad_jobs_are_refused(void)
{
    tsr_slurm_job job = base_job();
    CU_ASSERT_EQUAL(tsr_slurm_job_validate(&job), TSR_OK);
    job.nodes = 0;
    expect_invalid(&job, "--nodes");
    job = base_job();
    job.ntasks_per_node = 0;
    expect_invalid(&job, "--ntasks-per-node");
    job = base_job();
    job.time = "1 hour";
    expect_invalid(&job, "--time");
    job.time = "1:2:3:4";
    expect_invalid(&job, "--time");
    job = base_job();
    job.partition = "gpu;rm -rf";
    expect_invalid(&job, "--partition");
    job = base_job();
    job.cpus_per_node = 1;
    expect_invalid(&job, "--cpus-per-node");
    /* TP 2 does not divide 3 ranks */
    job = base_job();
    job.nodes = 3;
    job.ntasks_per_node = 1;
    expect_invalid(&job, "3 rank(s)");
}

static void test_time_formats(void)
{
    const char *good[] = {"30", "30:00", "01:30:00", "2-00", "2-12:00", "2-12:00:00"};
    tsr_slurm_job job = base_job();
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        job.time = good[i];
        CU_ASSERT_EQUAL(tsr_slurm_job_validate(&job), TSR_OK);
    }
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_cpu_job_takes_whole_nodes),
    TSR_TEST(test_gpu_job_with_fixed_cpus),
    TSR_TEST(test_bind_flag_reaches_report_step_and_quoting),
    TSR_TEST(test_bad_jobs_are_refused),
    TSR_TEST(test_time_formats),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("slurm_script", cases)};
    return tsr_test_main(suites, 1);
}
