/*
 * test_topo_synthetic.c - the bounds tsr_topo_synthetic_check puts on
 * hwloc synthetic descriptions: real machines and every form hwloc's
 * parser accepts pass, counts that are zero, negative or too large fail
 * with a message naming the level, and a machine at the limit loads.
 */
#include <string.h>

#include "harness.h"
#include "topo_load.h"
#include "topo_synthetic.h"

static void test_machines_and_syntax_hwloc_accepts_pass(void)
{
    static const char *const ok[] = {
        "pack:2 numa:2 core:8 pu:2",
        "4 4",
        "core:2pu:2",                              /* hwloc needs no blank between levels */
        "numa:0x10 pu:2",                          /* base 0, as strtoul reads it */
        "(memory=1GB) pack:2 [numa] core:4 pu:2",  /* root attributes, attached memory */
        "pack:2 numa:2(memory=1GB indexes=0,1,2,3) core:2 pu:2",
        "pack:2 numa:8 core:64 pu:16",             /* exactly the PU limit */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tsr_status st = tsr_topo_synthetic_check(ok[i]);
        CU_ASSERT_EQUAL(st, TSR_OK);
        if (st != TSR_OK)
            fprintf(stderr, "refused \"%s\": %s\n", ok[i], tsr_last_error());
    }
}

static void expect_refused(const char *desc, const char *needle)
{
    CU_ASSERT_EQUAL(tsr_topo_synthetic_check(desc), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), needle));
}

static void test_bad_counts_are_refused(void)
{
    expect_refused("numa:0 pu:2", "level 'numa' has a count of 0");
    expect_refused("pack:2 core:-3 pu:2", "level 'core' has a negative count (-3)");
    expect_refused("2 2 100000", "level 3 has a count of 100000");
    expect_refused("pack:2 numa:8 core:64 pu:17", "makes 17408 objects of that level");
    expect_refused("pu:184467440737095516160", "level 'pu' has a count of");
    expect_refused("pack:16384 core:1 l2:1 l1:1 pu:1", "brings the machine to");
}

static void test_limit_loads(void)
{
    hwloc_topology_t topo = NULL;
    CU_ASSERT_EQUAL(tsr_topo_load(NULL, "pack:2 numa:8 core:64 pu:16", &topo), TSR_OK);
    CU_ASSERT_EQUAL(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU), TSR_TOPO_SYNTHETIC_MAX_PUS);
    hwloc_topology_destroy(topo);
    topo = NULL;
    CU_ASSERT_EQUAL(tsr_topo_load(NULL, "pack:2 numa:100 core:100 pu:10", &topo),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(topo);
}

int main(void)
{
    static const tsr_test_case cases[] = {
        TSR_TEST(test_machines_and_syntax_hwloc_accepts_pass),
        TSR_TEST(test_bad_counts_are_refused),
        TSR_TEST(test_limit_loads),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("topo_synthetic", cases)};
    return tsr_test_main(suites, 1);
}
