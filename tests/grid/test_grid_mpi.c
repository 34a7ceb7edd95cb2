/*
 * test_grid_mpi.c - real communicators of the grid under mpirun -np 8:
 * every group of the tables in grid_tables.h, checked by membership and by
 * an all-reduce over the group, plus the position queries.
 */
#include <mpi.h>

#include "grid_tables.h"
#include "harness.h"
#include "tessera/config.h"

static tsr_comm *make_world(void)
{
    tsr_comm_options opts = {TSR_BACKEND_MPI, 60.0, "world", NULL};
    tsr_comm *world = NULL;
    CU_ASSERT_EQUAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK);
    return world;
}

/* Index (group rank) of `rank` in the table's group list, and the group's first entry. */
static const int *table_group(const grid_case *c, int kind, int rank, int *pos)
{
    int gs = c->group_size[kind];
    for (int i = 0; i < 8; i++) {
        if (c->members[kind][i] == rank) {
            *pos = i % gs;
            return &c->members[kind][i - i % gs];
        }
    }
    return NULL;
}

static void check_case(tsr_comm *world, const grid_case *c)
{
    int me = tsr_comm_rank(world);
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.tensor_model_parallel_size = c->tp;
    cfg.context_parallel_size = c->cp;
    cfg.expert_model_parallel_size = c->ep;
    cfg.pipeline_model_parallel_size = c->pp;
    cfg.rank_order = c->order;
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&cfg, world, &grid), TSR_OK);
    for (int k = 0; k < TSR_GROUP_COUNT; k++) {
        int pos = -1;
        const int *group = table_group(c, k, me, &pos);
        tsr_comm *comm = tsr_grid_comm(grid, (tsr_group_kind)k);
        if (group == NULL) { /* embedding group on a middle stage */
            CU_ASSERT_PTR_NULL(comm);
            continue;
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(comm);
        int gs = c->group_size[k];
        CU_ASSERT_EQUAL(tsr_comm_size(comm), gs);
        CU_ASSERT_EQUAL(tsr_comm_rank(comm), pos);
        CU_ASSERT_EQUAL(tsr_grid_rank(grid, (tsr_group_kind)k), pos);
        int64_t want = 0;
        for (int i = 0; i < gs; i++) {
            CU_ASSERT_EQUAL(tsr_comm_world_rank_of(comm, i), group[i]);
            want += 1000 + group[i];
        }
        int64_t mine = 1000 + me, got = 0;
        CU_ASSERT_EQUAL(tsr_comm_allreduce(&mine, &got, 1, TSR_COMM_INT64, TSR_COMM_SUM, comm,
                                           NULL),
                        TSR_OK);
        CU_ASSERT_EQUAL(got, want);
    }
    int pp_pos = -1;
    table_group(c, TSR_GROUP_PP, me, &pp_pos);
    CU_ASSERT_EQUAL(tsr_grid_pp_rank(grid), pp_pos);
    CU_ASSERT_EQUAL(tsr_grid_pp_size(grid), c->pp);
    CU_ASSERT_EQUAL(tsr_grid_tp_size(grid), c->tp);
    CU_ASSERT_EQUAL(tsr_grid_is_first_stage(grid), pp_pos == 0);
    CU_ASSERT_EQUAL(tsr_grid_is_last_stage(grid), pp_pos == c->pp - 1);
    CU_ASSERT_EQUAL(tsr_grid_in_embedding_group(grid), pp_pos == 0 || pp_pos == c->pp - 1);
    CU_ASSERT_EQUAL(tsr_grid_pp_next(grid), (pp_pos + 1) % c->pp);
    CU_ASSERT_EQUAL(tsr_grid_pp_prev(grid), (pp_pos + c->pp - 1) % c->pp);
    tsr_grid_destroy(grid);
}

static void test_tables_under_mpi(void)
{
    tsr_comm *world = make_world();
    CU_ASSERT_PTR_NOT_NULL_FATAL(world);
    CU_ASSERT_EQUAL_FATAL(tsr_comm_size(world), 8);
    for (size_t i = 0; i < GRID_CASE_COUNT; i++)
        check_case(world, &grid_cases[i]);
    tsr_comm_destroy(world);
}

static void test_virtual_pipeline_queries(void)
{
    tsr_comm *world = make_world();
    CU_ASSERT_PTR_NOT_NULL_FATAL(world);
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.pipeline_model_parallel_size = 4;
    cfg.num_layers = 16;
    cfg.num_layers_per_virtual_pipeline_stage = 2; /* 4 layers per stage -> 2 chunks */
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&cfg, world, &grid), TSR_OK);
    CU_ASSERT_EQUAL(tsr_grid_vpp_size(grid), 2);
    int pp = tsr_grid_pp_rank(grid);
    CU_ASSERT_EQUAL(pp, tsr_comm_rank(world) / 2);
    CU_ASSERT_EQUAL(tsr_grid_is_first_stage_virtual(grid, 0), pp == 0);
    CU_ASSERT_FALSE(tsr_grid_is_first_stage_virtual(grid, 1));
    CU_ASSERT_EQUAL(tsr_grid_is_last_stage_virtual(grid, 1), pp == 3);
    CU_ASSERT_FALSE(tsr_grid_is_last_stage_virtual(grid, 0));
    tsr_grid_destroy(grid);
    /* layers that do not split into chunks are refused before any split */
    cfg.num_layers = 12;
    cfg.num_layers_per_virtual_pipeline_stage = 2;
    CU_ASSERT_EQUAL(tsr_grid_create(&cfg, world, &grid), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(grid);
    tsr_comm_destroy(world);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_tables_under_mpi),
    TSR_TEST(test_virtual_pipeline_queries),
};

int main(int argc, char **argv)
{
    const tsr_test_suite suites[] = {TSR_SUITE("grid_mpi", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
