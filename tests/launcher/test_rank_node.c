/*
 * test_rank_node.c - node index, node count and local size from the
 * launcher environment (the rank/world basics are in tests/unit).
 */
#include <stdlib.h>

#include "harness.h"
#include "rank_env.h"

static const char *const all_vars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE",
    "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_STEP_ID",
    "SLURM_NODEID", "SLURM_NNODES", "SLURM_STEP_NUM_NODES", "SLURM_STEP_TASKS_PER_NODE",
    "SLURM_TASKS_PER_NODE"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
}

static void test_single_process_is_node_0_of_1(void)
{
    clear_env();
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.node_index, 0);
    CU_ASSERT_EQUAL(info.node_count, 1);
}

static void test_srun_node_and_uneven_local_size(void)
{
    /* 7 tasks on 3 nodes as "3(x2),1": rank 6 is the only task of node 2 */
    clear_env();
    setenv("SLURM_PROCID", "6", 1);
    setenv("SLURM_NTASKS", "7", 1);
    setenv("SLURM_LOCALID", "0", 1);
    setenv("SLURM_STEP_ID", "1", 1);
    setenv("SLURM_NODEID", "2", 1);
    setenv("SLURM_STEP_NUM_NODES", "3", 1);
    setenv("SLURM_STEP_TASKS_PER_NODE", "3(x2),1", 1);
    setenv("SLURM_NTASKS_PER_NODE", "3", 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SLURM);
    CU_ASSERT_EQUAL(info.node_index, 2);
    CU_ASSERT_EQUAL(info.node_count, 3);
    CU_ASSERT_EQUAL(info.local_rank, 0);
    CU_ASSERT_EQUAL(info.local_size, 1);
    clear_env();
}

static void test_mpirun_leaves_node_unknown(void)
{
    /* the batch script's SLURM_NODEID must not leak into mpirun's ranks */
    clear_env();
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_STEP_ID", "0", 1);
    setenv("SLURM_NODEID", "0", 1);
    setenv("OMPI_COMM_WORLD_RANK", "3", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_OMPI);
    CU_ASSERT_EQUAL(info.node_index, -1);
    CU_ASSERT_EQUAL(info.node_count, -1);
    CU_ASSERT_EQUAL(info.local_rank, 1);
    CU_ASSERT_EQUAL(info.local_size, 2);
    clear_env();
}

static void test_tasks_per_node_strings(void)
{
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("2(x2)", 0), 2);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("2(x2)", 1), 2);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("2(x2)", 2), -1);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("4,3,1", 1), 3);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("4(x3),2(x2)", 4), 2);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("8", 0), 8);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("2(3)", 0), -1);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("2(x)", 0), -1);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("a", 0), -1);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node("", 0), -1);
    CU_ASSERT_EQUAL(tsr_rank_slurm_tasks_on_node(NULL, 0), -1);
}

static void test_local_rank_beyond_local_size_widens_it(void)
{
    clear_env();
    setenv("SLURM_PROCID", "3", 1);
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_LOCALID", "3", 1);
    setenv("SLURM_STEP_ID", "0", 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.local_rank, 3);
    CU_ASSERT_EQUAL(info.local_size, 4);
    clear_env();
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_single_process_is_node_0_of_1),
    TSR_TEST(test_srun_node_and_uneven_local_size),
    TSR_TEST(test_mpirun_leaves_node_unknown),
    TSR_TEST(test_tasks_per_node_strings),
    TSR_TEST(test_local_rank_beyond_local_size_widens_it),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("rank_node", cases)};
    return tsr_test_main(suites, 1);
}
