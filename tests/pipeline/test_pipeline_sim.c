/*
 * test_pipeline_sim.c - the simulator itself: hand-made action lists that
 * are right, and ones with one mistake each, which it must refuse with a
 * message that points at the mistake. Without these, a simulator that
 * accepted everything would pass the schedule tests.
 */
#include <stdbool.h>
#include <string.h>

#include "harness.h"
#include "sharding/pipeline_sim.h"

#define F(mb) {TSR_PP_FORWARD, mb, 0, 0, {{0}}}
#define B(mb) {TSR_PP_BACKWARD, mb, 0, 0, {{0}}}
#define X1(k, peer, mb) {TSR_PP_EXCHANGE, -1, -1, 1, {{k, peer, mb, 0}}}
#define X2(k1, mb1, k2, mb2, peer)                                                               \
    {TSR_PP_EXCHANGE, -1, -1, 2, {{k1, peer, mb1, 0}, {k2, peer, mb2, 0}}}
#define SA TSR_PP_SEND_ACTIVATION
#define RA TSR_PP_RECV_ACTIVATION
#define SG TSR_PP_SEND_GRAD
#define RG TSR_PP_RECV_GRAD

static const tsr_pp_sim_options rendezvous = {1, 2, TSR_PP_SEND_RENDEZVOUS};
static const tsr_pp_sim_options eager = {1, 2, TSR_PP_SEND_EAGER};

static tsr_status run2(const tsr_pp_action *r0, size_t n0, const tsr_pp_action *r1, size_t n1,
                       int m, const tsr_pp_sim_options *opt, tsr_pp_sim_rank_stats *stats,
                       int64_t *makespan)
{
    const tsr_pp_action *lists[2] = {r0, r1};
    size_t counts[2] = {n0, n1};
    return tsr_pp_sim_run(2, m, 1, lists, counts, opt, stats, makespan, NULL);
}

#define RUN2(r0, r1, m, opt)                                                                      \
    run2(r0, sizeof r0 / sizeof r0[0], r1, sizeof r1 / sizeof r1[0], m, opt, stats, &makespan)

#define EXPECT_REFUSED(st, word)                                                                  \
    do {                                                                                          \
        CU_ASSERT_EQUAL(st, TSR_ERR_INVALID_ARG);                                                 \
        if (strstr(tsr_last_error(), word) == NULL) {                                             \
            CU_FAIL("message lacks the expected words");                                         \
            fprintf(stderr, "want \"%s\" in: %s\n", word, tsr_last_error());                      \
        }                                                                                         \
    } while (0)

/* Two stages, one microbatch, done right: times by hand. */
static void test_two_stages_one_microbatch(void)
{
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0)};
    const tsr_pp_action r1[] = {X1(RA, 0, 0), F(0), B(0), X1(SG, 0, 0)};
    int64_t start0[4], start1[4];
    int64_t *starts[2] = {start0, start1};
    const tsr_pp_action *lists[2] = {r0, r1};
    size_t counts[2] = {4, 4};
    CU_ASSERT_EQUAL_FATAL(
        tsr_pp_sim_run(2, 1, 1, lists, counts, &rendezvous, stats, &makespan, starts), TSR_OK);
    /* rank 0: F [0,1), send at 1, waits for the gradient until 4, B [4,6)
     * rank 1: waits until 1, F [1,2), B [2,4), send at 4 */
    CU_ASSERT_EQUAL(makespan, 6);
    CU_ASSERT_EQUAL(start0[0], 0);
    CU_ASSERT_EQUAL(start0[2], 1);
    CU_ASSERT_EQUAL(start0[3], 4);
    CU_ASSERT_EQUAL(start1[1], 1);
    CU_ASSERT_EQUAL(start1[2], 2);
    CU_ASSERT_EQUAL(start1[3], 4);
    CU_ASSERT_EQUAL(stats[0].busy, 3);
    CU_ASSERT_EQUAL(stats[0].wait, 3);
    CU_ASSERT_EQUAL(stats[0].finish, 6);
    CU_ASSERT_EQUAL(stats[1].wait, 1);
    CU_ASSERT_EQUAL(stats[1].finish, 4);
    CU_ASSERT_EQUAL(stats[1].idle, 3);
    CU_ASSERT_EQUAL(stats[0].peak_in_flight, 1);
}

static void test_circular_wait_is_a_deadlock(void)
{
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    /* rank 0 waits for a gradient before it sends the activation */
    const tsr_pp_action r0[] = {F(0), X1(RG, 1, 0), X1(SA, 1, 0), B(0)};
    const tsr_pp_action r1[] = {X1(RA, 0, 0), F(0), B(0), X1(SG, 0, 0)};
    EXPECT_REFUSED(RUN2(r0, r1, 1, &rendezvous), "deadlock");
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "rank 0 at action 1 {recv_grad 0.0 <1}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "rank 1 at action 0 {recv_act 0.0 <0}"));
    EXPECT_REFUSED(RUN2(r0, r1, 1, &eager), "deadlock");
}

/* Two unbatched sends in a row: fine with buffered sends, a deadlock
 * when a send waits for its receive - why Megatron batches a stage's
 * sends and receives into one exchange. */
static void test_unbatched_sends_deadlock_only_under_rendezvous(void)
{
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    const tsr_pp_action r0[] = {F(0), F(1), X1(SA, 1, 0), X1(SA, 1, 1),
                                X1(RG, 1, 0), B(0), X1(RG, 1, 1), B(1)};
    const tsr_pp_action r1[] = {X1(RA, 0, 0), F(0), B(0), X1(SG, 0, 0),
                                X1(RA, 0, 1), F(1), B(1), X1(SG, 0, 1)};
    CU_ASSERT_EQUAL(RUN2(r0, r1, 2, &eager), TSR_OK);
    CU_ASSERT_EQUAL(stats[0].peak_in_flight, 2);
    EXPECT_REFUSED(RUN2(r0, r1, 2, &rendezvous), "deadlock");
    /* rank 1 batching its gradient send with its next receive (Megatron's
     * send_backward_recv_forward) posts the receive rank 0's second send
     * waits for: no deadlock, and no time lost against buffered sends */
    const tsr_pp_action r1b[] = {X1(RA, 0, 0), F(0), B(0), X2(SG, 0, RA, 1, 0),
                                 F(1), B(1), X1(SG, 0, 1)};
    CU_ASSERT_EQUAL_FATAL(RUN2(r0, r1b, 2, &eager), TSR_OK);
    int64_t eager_makespan = makespan;
    CU_ASSERT_EQUAL_FATAL(RUN2(r0, r1b, 2, &rendezvous), TSR_OK);
    CU_ASSERT_EQUAL(makespan, eager_makespan);
    CU_ASSERT_EQUAL(makespan, 10);
}

static void test_mislabelled_receive_is_refused(void)
{
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    /* rank 1 receives microbatch 1 first, but rank 0 sends 0 first */
    const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), F(1), X1(SA, 1, 1),
                                X1(RG, 1, 0), B(0), X1(RG, 1, 1), B(1)};
    const tsr_pp_action r1[] = {X1(RA, 0, 1), X1(RA, 0, 0), F(0), B(0), X1(SG, 0, 0),
                                F(1), B(1), X1(SG, 0, 1)};
    EXPECT_REFUSED(RUN2(r0, r1, 2, &eager), "in channel order this receive meets rank 0's send");
}

/* With p = 2 both kinds of tensor travel between the same two ranks and
 * are matched in call order: swapping a rank's activation and gradient
 * sends inside one exchange would deliver each into the other's buffer. */
static void test_swapped_kinds_are_refused(void)
{
    const int p = 2, m = 4, v = 2;
    tsr_pp_action lists[2][64];
    size_t counts[2];
    for (int r = 0; r < p; r++) {
        tsr_pp_schedule_spec s = {TSR_PP_SCHEDULE_INTERLEAVED, p, r, m, v};
        CU_ASSERT_EQUAL_FATAL(tsr_pp_schedule_build(&s, lists[r], 64, &counts[r]), TSR_OK);
    }
    const tsr_pp_action *view[2] = {lists[0], lists[1]};
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    CU_ASSERT_EQUAL(tsr_pp_sim_run(p, m, v, view, counts, &rendezvous, stats, &makespan, NULL),
                    TSR_OK);
    bool swapped = false;
    for (size_t i = 0; i < counts[0] && !swapped; i++) {
        tsr_pp_action *a = &lists[0][i];
        if (a->kind == TSR_PP_EXCHANGE && a->num_ops >= 2 &&
            a->ops[0].kind == TSR_PP_SEND_ACTIVATION && a->ops[1].kind == TSR_PP_SEND_GRAD) {
            tsr_pp_p2p t = a->ops[0];
            a->ops[0] = a->ops[1];
            a->ops[1] = t;
            swapped = true;
        }
    }
    CU_ASSERT_TRUE_FATAL(swapped);
    EXPECT_REFUSED(tsr_pp_sim_run(p, m, v, view, counts, &eager, stats, &makespan, NULL),
                   "meets rank 0's send gradient");
}

static void test_unmatched_send_is_refused(void)
{
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0)};
    const tsr_pp_action r1[] = {X1(RA, 0, 0), F(0), B(0)};
    EXPECT_REFUSED(RUN2(r0, r1, 1, &eager), "from rank 1 to rank 0: 0 sends but 1 receives");
}

static void test_wrong_peer_is_refused(void)
{
    tsr_pp_sim_rank_stats stats[3];
    int64_t makespan = 0;
    /* three stages: rank 0 must send to rank 1, not to rank 2 */
    const tsr_pp_action r0[] = {F(0), X1(SA, 2, 0)};
    const tsr_pp_action r1[] = {F(0)};
    const tsr_pp_action r2[] = {F(0)};
    const tsr_pp_action *lists[3] = {r0, r1, r2};
    size_t counts[3] = {2, 1, 1};
    EXPECT_REFUSED(tsr_pp_sim_run(3, 1, 1, lists, counts, &eager, stats, &makespan, NULL),
                   "names peer 2, but that stage is on rank 1");
    /* the last stage has nobody to send activations to */
    const tsr_pp_action r2b[] = {F(0), X1(SA, 0, 0)};
    lists[0] = r1;
    counts[0] = 1;
    lists[2] = r2b;
    counts[2] = 2;
    EXPECT_REFUSED(tsr_pp_sim_run(3, 1, 1, lists, counts, &eager, stats, &makespan, NULL),
                   "no stage on that side");
}

static void test_compute_order_mistakes_are_refused(void)
{
    tsr_pp_sim_rank_stats stats[2];
    int64_t makespan = 0;
    const tsr_pp_action good1[] = {X1(RA, 0, 0), F(0), B(0), X1(SG, 0, 0)};
    {
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0), B(0)};
        EXPECT_REFUSED(RUN2(r0, good1, 1, &eager), "backwarded twice");
    }
    {
        const tsr_pp_action r0[] = {X1(SA, 1, 0), F(0), X1(RG, 1, 0), B(0)};
        EXPECT_REFUSED(RUN2(r0, good1, 1, &eager), "activation sent before its forward");
    }
    {
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), B(0), X1(RG, 1, 0)};
        EXPECT_REFUSED(RUN2(r0, good1, 1, &eager), "backward before its gradient");
    }
    {
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0)};
        const tsr_pp_action r1[] = {F(0), X1(RA, 0, 0), B(0), X1(SG, 0, 0)};
        EXPECT_REFUSED(RUN2(r0, r1, 1, &eager), "forward before its activation");
    }
    {
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0)};
        const tsr_pp_action r1[] = {X1(RA, 0, 0), F(0), B(1), B(0), X1(SG, 0, 0)};
        EXPECT_REFUSED(RUN2(r0, r1, 2, &eager), "backward before its forward");
    }
    {
        /* microbatch 1 is never run at all */
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0)};
        EXPECT_REFUSED(RUN2(r0, good1, 2, &eager), "rank 0 never forwarded microbatch 1 chunk 0");
    }
    {
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 0), X1(RG, 1, 0), B(0), F(0)};
        EXPECT_REFUSED(RUN2(r0, good1, 1, &eager), "forwarded twice");
    }
    {
        const tsr_pp_action r0[] = {F(0), X1(SA, 1, 3), X1(RG, 1, 0), B(0)};
        EXPECT_REFUSED(RUN2(r0, good1, 1, &eager), "out of range");
    }
}

static void test_bad_arguments_are_refused(void)
{
    tsr_pp_sim_rank_stats stats[1];
    int64_t makespan = 0;
    const tsr_pp_action r0[] = {F(0), B(0)};
    const tsr_pp_action *lists[1] = {r0};
    size_t counts[1] = {2};
    CU_ASSERT_EQUAL(tsr_pp_sim_run(1, 1, 1, lists, counts, &eager, stats, &makespan, NULL),
                    TSR_OK);
    CU_ASSERT_EQUAL(makespan, 3);
    CU_ASSERT_EQUAL(stats[0].idle, 0);
    EXPECT_REFUSED(tsr_pp_sim_run(0, 1, 1, lists, counts, &eager, stats, &makespan, NULL),
                   "at least 1");
    EXPECT_REFUSED(tsr_pp_sim_run(1, 1, 1, lists, counts, NULL, stats, &makespan, NULL), "NULL");
    tsr_pp_sim_options negative = {-1, 2, TSR_PP_SEND_EAGER};
    EXPECT_REFUSED(tsr_pp_sim_run(1, 1, 1, lists, counts, &negative, stats, &makespan, NULL),
                   "negative");
    tsr_pp_action empty_exchange[] = {F(0), {TSR_PP_EXCHANGE, -1, -1, 0, {{0}}}, B(0)};
    lists[0] = empty_exchange;
    counts[0] = 3;
    EXPECT_REFUSED(tsr_pp_sim_run(1, 1, 1, lists, counts, &eager, stats, &makespan, NULL),
                   "1 to 4 operations");
    tsr_pp_schedule_spec bad = {TSR_PP_SCHEDULE_INTERLEAVED, 4, 0, 6, 2};
    EXPECT_REFUSED(tsr_pp_sim_schedule(&bad, &eager, stats, &makespan), "not a multiple");
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_two_stages_one_microbatch),
    TSR_TEST(test_circular_wait_is_a_deadlock),
    TSR_TEST(test_unbatched_sends_deadlock_only_under_rendezvous),
    TSR_TEST(test_mislabelled_receive_is_refused),
    TSR_TEST(test_swapped_kinds_are_refused),
    TSR_TEST(test_unmatched_send_is_refused),
    TSR_TEST(test_wrong_peer_is_refused),
    TSR_TEST(test_compute_order_mistakes_are_refused),
    TSR_TEST(test_bad_arguments_are_refused),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("pipeline_sim", cases)};
    return tsr_test_main(suites, 1);
}
