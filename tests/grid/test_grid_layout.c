/*
 * test_grid_layout.c - the pure grid layout against hand-written tables
 * (grid_tables.h), order parsing, and the refusals.
 */
#include <string.h>

#include "grid_tables.h"
#include "harness.h"

static void check_case(const grid_case *c)
{
    tsr_grid_layout l;
    tsr_status st = tsr_grid_layout_compute(8, c->tp, c->cp, c->ep, c->pp, 1, c->order, &l);
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    for (int k = 0; k < TSR_GROUP_COUNT; k++) {
        int gs = c->group_size[k];
        CU_ASSERT_EQUAL(l.group_size[k], gs);
        CU_ASSERT_EQUAL(l.num_groups[k] * l.group_size[k], 8);
        for (int i = 0; i < 8; i++) {
            if (l.members[k][i] != c->members[k][i]) {
                CU_FAIL("member differs from the table");
                fprintf(stderr, "%s: group %s entry %d: got %d, want %d\n", c->name,
                        tsr_group_kind_name((tsr_group_kind)k), i, l.members[k][i],
                        c->members[k][i]);
            }
        }
        /* every rank finds itself in its group at its index */
        for (int r = 0; r < 8; r++) {
            int size = 0;
            const int *m = tsr_grid_layout_group(&l, (tsr_group_kind)k, r, &size);
            CU_ASSERT_PTR_NOT_NULL_FATAL(m);
            CU_ASSERT_EQUAL(size, gs);
            CU_ASSERT_EQUAL(m[l.index_in[k][r]], r);
        }
    }
    tsr_grid_layout_free(&l);
}

static void test_tables(void)
{
    for (size_t i = 0; i < GRID_CASE_COUNT; i++)
        check_case(&grid_cases[i]);
}

static void test_default_order_is_megatrons(void)
{
    tsr_grid_axis order[TSR_AXIS_COUNT];
    CU_ASSERT_EQUAL(tsr_grid_order_parse(NULL, order), TSR_OK);
    const tsr_grid_axis want[] = {TSR_AXIS_TP, TSR_AXIS_CP, TSR_AXIS_EP, TSR_AXIS_DP,
                                  TSR_AXIS_PP};
    CU_ASSERT_EQUAL(memcmp(order, want, sizeof want), 0);
    CU_ASSERT_EQUAL(tsr_grid_order_parse("pp-dp-ep-cp-tp", order), TSR_OK);
    CU_ASSERT_EQUAL(order[0], TSR_AXIS_PP);
    CU_ASSERT_EQUAL(order[4], TSR_AXIS_TP);
}

static void test_bad_orders_are_refused(void)
{
    tsr_grid_axis order[TSR_AXIS_COUNT];
    const char *bad[] = {"tp-cp-ep-dp", "tp-tp-cp-ep-dp", "tp-cp-ep-dp-pp-tp", "tp-cp-xx-dp-pp",
                         "", "tpcpepdppp"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(tsr_grid_order_parse(bad[i], order), TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "tp"));
    }
}

static void test_sizes_that_do_not_divide_are_refused(void)
{
    tsr_grid_layout l;
    CU_ASSERT_EQUAL(tsr_grid_layout_compute(8, 3, 1, 1, 1, 1, NULL, &l), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "tensor-model-parallel"));
    /* ep must divide cp x dp: world 8, tp 2, pp 2 leaves dp 2 */
    CU_ASSERT_EQUAL(tsr_grid_layout_compute(8, 2, 1, 4, 2, 1, NULL, &l), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "expert-model-parallel"));
    CU_ASSERT_EQUAL(tsr_grid_layout_compute(8, 0, 1, 1, 1, 1, NULL, &l), TSR_ERR_INVALID_ARG);
}

static void test_order_moving_experts_to_another_stage_is_refused(void)
{
    tsr_grid_layout l;
    /* dense: pp stride is cp = 2; expert view: pp stride is 1 */
    CU_ASSERT_EQUAL(tsr_grid_layout_compute(16, 1, 2, 2, 2, 1, "tp-cp-pp-ep-dp", &l),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--rank-order"));
    /* the same order without experts is fine */
    CU_ASSERT_EQUAL(tsr_grid_layout_compute(16, 1, 2, 1, 2, 1, "tp-cp-pp-ep-dp", &l), TSR_OK);
    tsr_grid_layout_free(&l);
}

static void test_cp_with_ep_folds_experts_into_cp_dp(void)
{
    /* world 8 = tp 1 x cp 2 x dp 4; ep 4 re-cuts cp x dp = 8 into ep 4 x edp 2 */
    tsr_grid_layout l;
    CU_ASSERT_EQUAL_FATAL(tsr_grid_layout_compute(8, 1, 2, 4, 1, 1, NULL, &l), TSR_OK);
    const int ep[] = {0, 1, 2, 3, 4, 5, 6, 7};
    const int edp[] = {0, 4, 1, 5, 2, 6, 3, 7};
    CU_ASSERT_EQUAL(l.group_size[TSR_GROUP_EP], 4);
    CU_ASSERT_EQUAL(l.group_size[TSR_GROUP_EXPERT_DP], 2);
    CU_ASSERT_EQUAL(memcmp(l.members[TSR_GROUP_EP], ep, sizeof ep), 0);
    CU_ASSERT_EQUAL(memcmp(l.members[TSR_GROUP_EXPERT_DP], edp, sizeof edp), 0);
    tsr_grid_layout_free(&l);
}

static void test_embedding_group_ends_of_a_long_pipeline(void)
{
    /* world 8, pp 4, dp 2: pipelines {0,2,4,6} and {1,3,5,7} */
    tsr_grid_layout l;
    CU_ASSERT_EQUAL_FATAL(tsr_grid_layout_compute(8, 1, 1, 1, 4, 2, NULL, &l), TSR_OK);
    const int want[] = {0, 6, 1, 7};
    CU_ASSERT_EQUAL(l.group_size[TSR_GROUP_EMBEDDING], 2);
    CU_ASSERT_EQUAL(memcmp(l.members[TSR_GROUP_EMBEDDING], want, sizeof want), 0);
    CU_ASSERT_EQUAL(l.group_of[TSR_GROUP_EMBEDDING][2], -1);
    CU_ASSERT_EQUAL(l.group_of[TSR_GROUP_EMBEDDING][5], -1);
    int size = 9;
    CU_ASSERT_PTR_NULL(tsr_grid_layout_group(&l, TSR_GROUP_EMBEDDING, 4, &size));
    CU_ASSERT_EQUAL(size, 0);
    CU_ASSERT_EQUAL(l.vpp, 2);
    tsr_grid_layout_free(&l);
}

static void test_single_rank(void)
{
    tsr_grid_layout l;
    CU_ASSERT_EQUAL_FATAL(tsr_grid_layout_compute(1, 1, 1, 1, 1, 1, NULL, &l), TSR_OK);
    for (int k = 0; k < TSR_GROUP_COUNT; k++) {
        CU_ASSERT_EQUAL(l.group_size[k], 1);
        CU_ASSERT_EQUAL(l.members[k][0], 0);
    }
    tsr_grid_layout_free(&l);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_tables),
    TSR_TEST(test_default_order_is_megatrons),
    TSR_TEST(test_bad_orders_are_refused),
    TSR_TEST(test_sizes_that_do_not_divide_are_refused),
    TSR_TEST(test_order_moving_experts_to_another_stage_is_refused),
    TSR_TEST(test_cp_with_ep_folds_experts_into_cp_dp),
    TSR_TEST(test_embedding_group_ends_of_a_long_pipeline),
    TSR_TEST(test_single_rank),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("grid_layout", cases)};
    return tsr_test_main(suites, 1);
}
