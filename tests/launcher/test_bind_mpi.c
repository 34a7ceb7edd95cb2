/*
 * test_bind_mpi.c - under mpirun on this machine: every rank applies its
 * binding, the OS reports exactly the planned PUs, the ranks of the node
 * cover its cores without overlap (or share them evenly when there are
 * more ranks than cores), and the node index computed through MPI says
 * one node.
 */
#include <hwloc.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "harness.h"
#include "rank_env.h"

static void test_node_index_under_mpirun(void)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    CU_ASSERT_EQUAL(info.source, TSR_RANK_FROM_OMPI);
    CU_ASSERT_EQUAL(info.node_index, -1);
    CU_ASSERT_EQUAL(tsr_rank_info_resolve_node(&info, MPI_COMM_WORLD), TSR_OK);
    CU_ASSERT_EQUAL(info.node_index, 0);
    CU_ASSERT_EQUAL(info.node_count, 1);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CU_ASSERT_EQUAL(info.local_size, size);
}

static void test_binding_is_applied_and_read_back(void)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    tsr_binding_report r;
    CU_ASSERT_EQUAL_FATAL(tsr_bind_apply(&info, TSR_BIND_CORE, &r), TSR_OK);
    CU_ASSERT_EQUAL(r.applied, 1);
    CU_ASSERT_STRING_EQUAL(r.actual, r.cpus);
    CU_ASSERT_TRUE(r.core_count >= 1);

    /* gather every rank's PUs; with R ranks over C cores, each core is
     * used by ceil(R/C) or floor(R/C) ranks, and by exactly one if R <= C */
    int size = 0, rank = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    hwloc_topology_t topo;
    hwloc_topology_init(&topo);
    hwloc_topology_load(topo);
    int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    int pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    char *all = calloc((size_t)size, sizeof r.cpus);
    MPI_Allgather(r.cpus, sizeof r.cpus, MPI_CHAR, all, sizeof r.cpus, MPI_CHAR, MPI_COMM_WORLD);
    int *uses = calloc((size_t)pus, sizeof *uses);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    for (int i = 0; i < size; i++) {
        hwloc_bitmap_list_sscanf(set, all + (size_t)i * sizeof r.cpus);
        for (int p = 0; p < pus; p++) {
            hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)p);
            if (hwloc_bitmap_isset(set, pu->os_index))
                uses[p]++;
        }
    }
    int lo = size >= cores ? size / cores : 1, hi = (size + cores - 1) / cores;
    for (int p = 0; p < pus; p++)
        CU_ASSERT_TRUE(uses[p] >= lo && uses[p] <= hi);
    if (rank == 0)
        printf("\n%d ranks over %d cores: %s ... \n", size, cores, all);
    hwloc_bitmap_free(set);
    free(uses);
    free(all);
    hwloc_topology_destroy(topo);
}

static void test_policy_none_binds_nothing(void)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    tsr_binding_report before, r;
    CU_ASSERT_EQUAL_FATAL(tsr_bind_read_actual(&before), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_bind_apply(&info, TSR_BIND_NONE, &r), TSR_OK);
    CU_ASSERT_EQUAL(r.applied, 0);
    CU_ASSERT_STRING_EQUAL(r.actual, before.actual);
}

static void test_report_line(void)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    tsr_rank_info_resolve_node(&info, MPI_COMM_WORLD);
    tsr_binding_report r;
    CU_ASSERT_EQUAL_FATAL(tsr_bind_apply(&info, TSR_BIND_CORE, &r), TSR_OK);
    char line[TSR_BIND_REPORT_MAX], want[640];
    tsr_bind_format_report(&info, &r, line, sizeof line);
    snprintf(want, sizeof want, "tessera bind: rank=%d/%d node=0/1 local=%d/%d ", info.rank,
             info.world_size, info.local_rank, info.local_size);
    CU_ASSERT_EQUAL(strncmp(line, want, strlen(want)), 0);
    snprintf(want, sizeof want, " cpus=%s actual=%s ", r.cpus, r.cpus);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, " policy=core "));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, " gpu=none "));
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_node_index_under_mpirun),
    TSR_TEST(test_policy_none_binds_nothing),
    TSR_TEST(test_binding_is_applied_and_read_back),
    TSR_TEST(test_report_line),
};

int main(int argc, char **argv)
{
    const tsr_test_suite suites[] = {TSR_SUITE("bind_mpi", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
