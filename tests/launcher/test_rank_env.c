/*
 * test_rank_env.c - rank discovery from the mpirun / PMIx / srun
 * environment (launcher/rank_env.c): rank, world size, local rank and size,
 * node index and count, and which launcher's variables win.
 *
 * Each case starts from an environment holding none of the variables
 * rank_env.c reads, then sets exactly those it is about.
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

/* Clears every launcher variable, sets the NAME, VALUE pairs of `set`
 * (NULL-terminated), and discovers. */
static tsr_rank_info discover(const char *const *set)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
    for (size_t i = 0; set[i] != NULL && set[i + 1] != NULL; i += 2)
        setenv(set[i], set[i + 1], 1);
    tsr_rank_info info = tsr_rank_info_from_env();
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
    return info;
}

static void test_single_process_is_rank_0_of_1_on_node_0_of_1(void)
{
    tsr_rank_info info = discover((const char *[]){NULL});
    CU_ASSERT_EQUAL(info.rank, 0);
    CU_ASSERT_EQUAL(info.world_size, 1);
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SINGLE);
    CU_ASSERT_EQUAL(info.node_index, 0);
    CU_ASSERT_EQUAL(info.node_count, 1);
}

static void test_mpirun_wins_over_slurm_and_leaves_node_unknown(void)
{
    /* mpirun inside an allocation: the batch script's SLURM_NODEID must not
     * leak into mpirun's ranks */
    tsr_rank_info info = discover((const char *[]){
        "SLURM_PROCID", "0", "SLURM_NTASKS", "4", "SLURM_STEP_ID", "0", "SLURM_NODEID", "0",
        "OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "4", "OMPI_COMM_WORLD_LOCAL_RANK", "1",
        "OMPI_COMM_WORLD_LOCAL_SIZE", "2", NULL});
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_OMPI);
    CU_ASSERT_EQUAL(info.rank, 3);
    CU_ASSERT_EQUAL(info.world_size, 4);
    CU_ASSERT_EQUAL(info.local_rank, 1);
    CU_ASSERT_EQUAL(info.local_size, 2);
    CU_ASSERT_EQUAL(info.node_index, -1);
    CU_ASSERT_EQUAL(info.node_count, -1);
}

static void test_srun(void)
{
    tsr_rank_info info =
        discover((const char *[]){"SLURM_PROCID", "5", "SLURM_NTASKS", "8", "SLURM_LOCALID", "1",
                                  "SLURM_STEP_ID", "2", NULL});
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SLURM);
    CU_ASSERT_EQUAL(info.rank, 5);
    CU_ASSERT_EQUAL(info.world_size, 8);
    CU_ASSERT_EQUAL(info.local_rank, 1);
}

static void test_srun_node_and_uneven_local_size(void)
{
    /* 7 tasks on 3 nodes as "3(x2),1": rank 6 is the only task of node 2 */
    tsr_rank_info info = discover((const char *[]){
        "SLURM_PROCID", "6", "SLURM_NTASKS", "7", "SLURM_LOCALID", "0", "SLURM_STEP_ID", "1",
        "SLURM_NODEID", "2", "SLURM_STEP_NUM_NODES", "3", "SLURM_STEP_TASKS_PER_NODE", "3(x2),1",
        "SLURM_NTASKS_PER_NODE", "3", NULL});
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SLURM);
    CU_ASSERT_EQUAL(info.node_index, 2);
    CU_ASSERT_EQUAL(info.node_count, 3);
    CU_ASSERT_EQUAL(info.local_rank, 0);
    CU_ASSERT_EQUAL(info.local_size, 1);
}

static void test_local_rank_beyond_local_size_widens_it(void)
{
    tsr_rank_info info =
        discover((const char *[]){"SLURM_PROCID", "3", "SLURM_NTASKS", "4", "SLURM_LOCALID", "3",
                                  "SLURM_STEP_ID", "0", NULL});
    CU_ASSERT_EQUAL(info.local_rank, 3);
    CU_ASSERT_EQUAL(info.local_size, 4);
}

static void test_batch_script_is_not_a_task(void)
{
    /* no SLURM_STEP_ID: the batch script itself */
    tsr_rank_info info = discover((const char *[]){"SLURM_PROCID", "0", "SLURM_NTASKS", "8", NULL});
    CU_ASSERT_EQUAL(info.world_size, 1);
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SINGLE);
}

static void test_garbled_values_are_ignored(void)
{
    tsr_rank_info info =
        discover((const char *[]){"OMPI_COMM_WORLD_RANK", "x1", "OMPI_COMM_WORLD_SIZE", "4", NULL});
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_SINGLE);
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

static const tsr_test_case cases[] = {
    TSR_TEST(test_single_process_is_rank_0_of_1_on_node_0_of_1),
    TSR_TEST(test_mpirun_wins_over_slurm_and_leaves_node_unknown),
    TSR_TEST(test_srun),
    TSR_TEST(test_srun_node_and_uneven_local_size),
    TSR_TEST(test_local_rank_beyond_local_size_widens_it),
    TSR_TEST(test_batch_script_is_not_a_task),
    TSR_TEST(test_garbled_values_are_ignored),
    TSR_TEST(test_tasks_per_node_strings),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("rank_env", cases)};
    return tsr_test_main(suites, 1);
}
