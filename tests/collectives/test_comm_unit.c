/*
 * test_comm_unit.c - the pure parts of the collectives layer: dtype sizes,
 * bf16 rounding, the backend rule, and the watchdog's classification and
 * messages (checked here so no test has to hang to see them).
 */
#include <math.h>
#include <string.h>

#include "collectives/comm.h"
#include "collectives/watchdog.h"
#include "harness.h"

static void test_dtype_sizes_and_names(void)
{
    CU_ASSERT_EQUAL(tsr_comm_dtype_size(TSR_COMM_FP32), 4);
    CU_ASSERT_EQUAL(tsr_comm_dtype_size(TSR_COMM_BF16), 2);
    CU_ASSERT_EQUAL(tsr_comm_dtype_size(TSR_COMM_INT32), 4);
    CU_ASSERT_EQUAL(tsr_comm_dtype_size(TSR_COMM_INT64), 8);
    CU_ASSERT_EQUAL(tsr_comm_dtype_size(TSR_COMM_FP64), 8);
    CU_ASSERT_EQUAL(tsr_comm_dtype_size((tsr_comm_dtype)42), 0);
    CU_ASSERT_STRING_EQUAL(tsr_comm_dtype_name(TSR_COMM_BF16), "bf16");
    CU_ASSERT_STRING_EQUAL(tsr_comm_kind_name(TSR_COMM_KIND_REDUCE_SCATTER), "reduce_scatter");
    CU_ASSERT_STRING_EQUAL(tsr_comm_kind_name(TSR_COMM_KIND_BARRIER), "barrier");
    CU_ASSERT_STRING_EQUAL(tsr_comm_kind_name((tsr_comm_kind)99), "unknown");
    CU_ASSERT_STRING_EQUAL(tsr_comm_backend_name(TSR_COMM_BACKEND_NCCL), "nccl");
}

static void test_bf16_round_trip_and_rounding(void)
{
    /* exactly representable values survive */
    const float exact[] = {0.0f, 1.0f, -2.5f, 256.0f, 3.140625f, 1e-3f * 0 + 0.5f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        CU_ASSERT_EQUAL(tsr_bf16_to_float(tsr_float_to_bf16(exact[i])), exact[i]);
    CU_ASSERT_EQUAL(tsr_float_to_bf16(1.0f), 0x3f80);
    /* 257 lies halfway between 256 and 258: ties go to even (256) */
    CU_ASSERT_EQUAL(tsr_bf16_to_float(tsr_float_to_bf16(257.0f)), 256.0f);
    /* 259 is halfway between 258 and 260: even mantissa is 260 */
    CU_ASSERT_EQUAL(tsr_bf16_to_float(tsr_float_to_bf16(259.0f)), 260.0f);
    CU_ASSERT_EQUAL(tsr_bf16_to_float(tsr_float_to_bf16(257.5f)), 258.0f);
    CU_ASSERT_TRUE(isnan(tsr_bf16_to_float(tsr_float_to_bf16(NAN))));
    CU_ASSERT_TRUE(isinf(tsr_bf16_to_float(tsr_float_to_bf16(INFINITY))));
}

static void test_backend_rule(void)
{
    tsr_comm_backend b;
    const int ranks4[] = {4, 4, 4, 4}, gpus4[] = {4, 4, 4, 4};
    const int gpus2[] = {2, 2, 2, 2}, gpus0[] = {0, 0, 0, 0};
    const int mixed_ranks[] = {2, 2, 4, 4}, mixed_gpus[] = {2, 2, 2, 2};
    /* every rank has its own GPU */
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_AUTO, true, 4, ranks4, gpus4, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_NCCL);
    /* ranks share GPUs */
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_AUTO, true, 4, ranks4, gpus2, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_MPI);
    /* one node of two is oversubscribed */
    CU_ASSERT_EQUAL(
        tsr_comm_backend_decide(TSR_BACKEND_AUTO, true, 4, mixed_ranks, mixed_gpus, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_MPI);
    /* no GPUs */
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_AUTO, true, 4, ranks4, gpus0, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_MPI);
    /* NCCL not built */
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_AUTO, false, 4, ranks4, gpus4, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_MPI);
    /* forced choices */
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_MPI, true, 4, ranks4, gpus4, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_MPI);
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_NCCL, true, 4, ranks4, gpus4, &b), TSR_OK);
    CU_ASSERT_EQUAL(b, TSR_COMM_BACKEND_NCCL);
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_NCCL, true, 4, ranks4, gpus2, &b),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--backend mpi"));
    CU_ASSERT_EQUAL(tsr_comm_backend_decide(TSR_BACKEND_NCCL, false, 4, ranks4, gpus4, &b),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "without NCCL"));
}

static void test_options_from_config(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.distributed_timeout_minutes = 0.05;
    cfg.backend = TSR_BACKEND_MPI;
    tsr_comm_options o;
    tsr_comm_options_from_config(&cfg, &o);
    CU_ASSERT_TRUE(fabs(o.timeout_seconds - 3.0) < 1e-9);
    CU_ASSERT_EQUAL(o.backend, TSR_BACKEND_MPI);
}

static void test_watchdog_classify(void)
{
    uint64_t w5 = tsr_watchdog_word(5, TSR_COMM_KIND_ALLREDUCE);
    uint64_t w4 = tsr_watchdog_word(4, TSR_COMM_KIND_ALLREDUCE);
    uint64_t w5b = tsr_watchdog_word(5, TSR_COMM_KIND_BARRIER);
    uint64_t w6 = tsr_watchdog_word(6, TSR_COMM_KIND_BROADCAST);
    tsr_watchdog_peer p = tsr_watchdog_classify(5, TSR_COMM_KIND_ALLREDUCE, w5, true);
    CU_ASSERT_EQUAL(p.state, TSR_PEER_ARRIVED);
    p = tsr_watchdog_classify(5, TSR_COMM_KIND_ALLREDUCE, w4, true);
    CU_ASSERT_EQUAL(p.state, TSR_PEER_NEVER_ARRIVED);
    CU_ASSERT_EQUAL(p.seq, 4);
    CU_ASSERT_EQUAL(p.kind, TSR_COMM_KIND_ALLREDUCE);
    p = tsr_watchdog_classify(5, TSR_COMM_KIND_ALLREDUCE, w5b, true);
    CU_ASSERT_EQUAL(p.state, TSR_PEER_OTHER_COLLECTIVE);
    p = tsr_watchdog_classify(5, TSR_COMM_KIND_ALLREDUCE, w6, true);
    CU_ASSERT_EQUAL(p.state, TSR_PEER_ARRIVED); /* it went past: it did arrive */
    p = tsr_watchdog_classify(5, TSR_COMM_KIND_ALLREDUCE, w5, false);
    CU_ASSERT_EQUAL(p.state, TSR_PEER_NO_ANSWER);
    p = tsr_watchdog_classify(1, TSR_COMM_KIND_ALLREDUCE, 0, true);
    CU_ASSERT_EQUAL(p.state, TSR_PEER_NEVER_ARRIVED);
    CU_ASSERT_EQUAL(p.kind, -1);
}

static void test_watchdog_message_names_op_group_and_missing_ranks(void)
{
    const int world_ranks[4] = {4, 5, 6, 7};
    tsr_watchdog_peer peers[4] = {{TSR_PEER_ARRIVED, 3, TSR_COMM_KIND_ALLREDUCE},
                                  {TSR_PEER_NEVER_ARRIVED, 2, TSR_COMM_KIND_BARRIER},
                                  {TSR_PEER_NO_ANSWER, 0, -1},
                                  {TSR_PEER_ARRIVED, 3, TSR_COMM_KIND_ALLREDUCE}};
    char msg[1024];
    tsr_watchdog_format(msg, sizeof msg, "allreduce", "tp", 4, 0, world_ranks, 3, peers, 3.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "allreduce #3 on group tp"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "never arrived: world rank 5 (group rank 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "did not answer (dead, or stuck outside MPI): world rank 6"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "arrived: world ranks 4, 7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "3.0 s"));
    /* a tiny buffer truncates without overflowing */
    char small[16];
    tsr_watchdog_format(small, sizeof small, "allreduce", "tp", 4, 0, world_ranks, 3, peers, 3.0);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);

    tsr_watchdog_peer dead = {TSR_PEER_NO_ANSWER, 0, -1};
    tsr_watchdog_format_p2p(msg, sizeof msg, "recv", "pp", 2, world_ranks, &dead, 3.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "recv with world rank 6 (group rank 2) on group pp"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "world rank 6 never arrived"));
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_dtype_sizes_and_names),
    TSR_TEST(test_bf16_round_trip_and_rounding),
    TSR_TEST(test_backend_rule),
    TSR_TEST(test_options_from_config),
    TSR_TEST(test_watchdog_classify),
    TSR_TEST(test_watchdog_message_names_op_group_and_missing_ranks),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("comm_unit", cases)};
    return tsr_test_main(suites, 1);
}
