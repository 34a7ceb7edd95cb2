/*
 * test_rank_env.c - rank discovery from mpirun / PMIx / srun variables.
 */
#include <stdlib.h>

#include "harness.h"
#include "rank_env.h"

static const char *const all_vars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE",
    "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_STEP_ID"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
}

static void test_single_process(void)
{
    clear_env();
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.rank, 0);
    CU_ASSERT_EQUAL(info.world_size, 1);
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SINGLE);
}

static void test_mpirun_wins_over_slurm(void)
{
    clear_env();
    setenv("SLURM_PROCID", "0", 1); /* mpirun inside an allocation */
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_STEP_ID", "0", 1);
    setenv("OMPI_COMM_WORLD_RANK", "3", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.rank, 3);
    CU_ASSERT_EQUAL(info.world_size, 4);
    CU_ASSERT_EQUAL(info.local_rank, 1);
    CU_ASSERT_EQUAL(info.local_size, 2);
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_OMPI);
}

static void test_srun(void)
{
    clear_env();
    setenv("SLURM_PROCID", "5", 1);
    setenv("SLURM_NTASKS", "8", 1);
    setenv("SLURM_LOCALID", "1", 1);
    setenv("SLURM_STEP_ID", "2", 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.rank, 5);
    CU_ASSERT_EQUAL(info.world_size, 8);
    CU_ASSERT_EQUAL(info.local_rank, 1);
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SLURM);
}

static void test_batch_script_is_not_a_task(void)
{
    clear_env();
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_NTASKS", "8", 1); /* no SLURM_STEP_ID: the batch script itself */
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.world_size, 1);
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SINGLE);
}

static void test_garbled_values_are_ignored(void)
{
    clear_env();
    setenv("OMPI_COMM_WORLD_RANK", "x1", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SINGLE);
    clear_env();
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_single_process),
    TSR_TEST(test_mpirun_wins_over_slurm),
    TSR_TEST(test_srun),
    TSR_TEST(test_batch_script_is_not_a_task),
    TSR_TEST(test_garbled_values_are_ignored),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("rank_env", cases)};
    return tsr_test_main(suites, 1);
}
