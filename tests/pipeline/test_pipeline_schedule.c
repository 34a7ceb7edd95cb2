/*
 * test_pipeline_schedule.c - the pipeline schedules, run together.
 *
 * For every schedule, pp in {1,2,3,4,8}, m in 1..16 and v in 1..3 (where
 * the schedule accepts them) the test checks the lists itself (each
 * (microbatch, chunk) forwarded and backwarded exactly once, its
 * activation received before its forward, its gradient before its
 * backward, every send after the compute that made it, the k-th send from
 * one rank to another naming the tensor of the other's k-th receive from
 * it, activations and gradients together) and then runs all
 * ranks in the event simulation, where a send completes only when its
 * receive is posted: no deadlock, the bubble and the peak number of
 * microbatches in flight equal to the closed forms written here.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "pipeline_lists.h"
#include "sharding/pipeline_sim.h"

static const int pp_sizes[] = {1, 2, 3, 4, 8};
#define NUM_PP_SIZES (int)(sizeof pp_sizes / sizeof pp_sizes[0])

static bool spec_valid(tsr_pp_schedule_kind kind, int p, int m, int v)
{
    /* the rules as the issue states them, written out independently */
    if (kind == TSR_PP_SCHEDULE_1F1B && v != 1)
        return false;
    if (v > 1 && p < 2)
        return false;
    if ((kind == TSR_PP_SCHEDULE_INTERLEAVED || v > 1) && m % p != 0)
        return false;
    return true;
}

/* --- list checks, independent of the simulator ------------------------ */

typedef struct seen {
    int fwd, bwd, recv_act, send_act, recv_grad, send_grad; /* list index or -1 */
} seen;

static int failures_reported;

#define LIST_CHECK(cond, ...)                                                                     \
    do {                                                                                          \
        CU_ASSERT_TRUE(cond);                                                                     \
        if (!(cond) && failures_reported++ < 10) {                                                \
            fprintf(stderr, "%s p=%d m=%d v=%d rank %d: ", tsr_pp_schedule_kind_name(kind), l->p, \
                    l->m, l->v, r);                                                               \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

static void record(int *slot, int index, bool *twice)
{
    if (*slot >= 0)
        *twice = true;
    *slot = index;
}

static void check_rank_list(tsr_pp_schedule_kind kind, const pp_lists *l, int r)
{
    int p = l->p, m = l->m, v = l->v;
    seen *s = malloc((size_t)m * (size_t)v * sizeof *s);
    for (int i = 0; i < m * v; i++)
        s[i] = (seen){-1, -1, -1, -1, -1, -1};
    bool twice = false;
    for (size_t i = 0; i < l->counts[r]; i++) {
        const tsr_pp_action *a = &l->lists[r][i];
        if (a->kind != TSR_PP_EXCHANGE) {
            bool in_range = a->microbatch >= 0 && a->microbatch < m && a->chunk >= 0 &&
                            a->chunk < v;
            LIST_CHECK(in_range, "action %zu out of range", i);
            if (!in_range)
                continue;
            seen *x = &s[a->microbatch * v + a->chunk];
            record(a->kind == TSR_PP_FORWARD ? &x->fwd : &x->bwd, (int)i, &twice);
            continue;
        }
        LIST_CHECK(a->num_ops >= 1 && a->num_ops <= 4, "exchange %zu has %d ops", i, a->num_ops);
        for (int k = 0; k < a->num_ops; k++) {
            const tsr_pp_p2p *op = &a->ops[k];
            bool in_range = op->microbatch >= 0 && op->microbatch < m && op->chunk >= 0 &&
                            op->chunk < v;
            LIST_CHECK(in_range, "exchange %zu op %d names %d.%d", i, k, op->microbatch,
                       op->chunk);
            if (!in_range)
                continue;
            seen *x = &s[op->microbatch * v + op->chunk];
            bool toward_next = op->kind == TSR_PP_SEND_ACTIVATION || op->kind == TSR_PP_RECV_GRAD;
            LIST_CHECK(op->peer == (toward_next ? (r + 1) % p : (r + p - 1) % p),
                       "exchange %zu op %d has peer %d", i, k, op->peer);
            int *slot = op->kind == TSR_PP_SEND_ACTIVATION   ? &x->send_act
                        : op->kind == TSR_PP_RECV_ACTIVATION ? &x->recv_act
                        : op->kind == TSR_PP_SEND_GRAD       ? &x->send_grad
                                                             : &x->recv_grad;
            record(slot, (int)i, &twice);
        }
    }
    LIST_CHECK(!twice, "some compute or transfer appears twice");
    for (int mb = 0; mb < m; mb++) {
        for (int c = 0; c < v; c++) {
            const seen *x = &s[mb * v + c];
            int stage = c * p + r;
            bool first = stage == 0, last = stage == p * v - 1;
            LIST_CHECK(x->fwd >= 0 && x->bwd > x->fwd, "microbatch %d chunk %d: F at %d, B at %d",
                       mb, c, x->fwd, x->bwd);
            if (first)
                LIST_CHECK(x->recv_act < 0 && x->send_grad < 0,
                           "first stage receives or sends for %d.%d", mb, c);
            else
                LIST_CHECK(x->recv_act >= 0 && x->recv_act < x->fwd && x->send_grad > x->bwd,
                           "%d.%d: recv act %d, F %d, B %d, send grad %d", mb, c, x->recv_act,
                           x->fwd, x->bwd, x->send_grad);
            if (last)
                LIST_CHECK(x->send_act < 0 && x->recv_grad < 0,
                           "last stage sends or receives for %d.%d", mb, c);
            else
                LIST_CHECK(x->send_act > x->fwd && x->recv_grad >= 0 && x->recv_grad < x->bwd,
                           "%d.%d: F %d, send act %d, recv grad %d, B %d", mb, c, x->fwd,
                           x->send_act, x->recv_grad, x->bwd);
        }
    }
    free(s);
}

/* The k-th tensor rank `from` sends to rank `to`, activations and
 * gradients together in list order (and operation order inside an
 * exchange), named as the receiver will name it: (mb * v + chunk) * 2 +
 * (1 for a gradient). -1 past the end. */
static int nth_sent(const pp_lists *l, int from, int to, int n)
{
    int seen_n = 0;
    for (size_t i = 0; i < l->counts[from]; i++) {
        const tsr_pp_action *a = &l->lists[from][i];
        for (int k = 0; k < (a->kind == TSR_PP_EXCHANGE ? a->num_ops : 0); k++) {
            const tsr_pp_p2p *op = &a->ops[k];
            bool act = op->kind == TSR_PP_SEND_ACTIVATION;
            if ((!act && op->kind != TSR_PP_SEND_GRAD) || op->peer != to)
                continue;
            if (seen_n++ == n) {
                int stage = op->chunk * l->p + from + (act ? 1 : -1);
                return (op->microbatch * l->v + stage / l->p) * 2 + (act ? 0 : 1);
            }
        }
    }
    return -1;
}

/* Receives from each neighbour meet the neighbour's sends in call order,
 * as tsr_comm_batch_p2p() matches them (no tags). */
static void check_channels(tsr_pp_schedule_kind kind, const pp_lists *l)
{
    for (int r = 0; r < l->p; r++) {
        int froms[2] = {(r + l->p - 1) % l->p, (r + 1) % l->p};
        for (int f = 0; f < (froms[0] == froms[1] ? 1 : 2); f++) {
            int from = froms[f], n = 0;
            for (size_t i = 0; i < l->counts[r]; i++) {
                const tsr_pp_action *a = &l->lists[r][i];
                for (int k = 0; k < (a->kind == TSR_PP_EXCHANGE ? a->num_ops : 0); k++) {
                    const tsr_pp_p2p *op = &a->ops[k];
                    bool act = op->kind == TSR_PP_RECV_ACTIVATION;
                    if ((!act && op->kind != TSR_PP_RECV_GRAD) || op->peer != from)
                        continue;
                    int sent = nth_sent(l, from, r, n++);
                    int want = (op->microbatch * l->v + op->chunk) * 2 + (act ? 0 : 1);
                    LIST_CHECK(sent == want, "receive %d from %d (%s %d.%d) meets send %d", n - 1,
                               from, act ? "act" : "grad", op->microbatch, op->chunk, sent);
                }
            }
            LIST_CHECK(nth_sent(l, from, r, n) == -1, "rank %d sends more than rank %d receives",
                       from, r);
        }
    }
}

static void test_lists_are_complete_and_pair_up(void)
{
    int checked = 0;
    for (int kind = 0; kind < TSR_PP_SCHEDULE_COUNT; kind++) {
        for (int pi = 0; pi < NUM_PP_SIZES; pi++) {
            for (int m = 1; m <= 16; m++) {
                for (int v = 1; v <= 3; v++) {
                    int p = pp_sizes[pi];
                    if (!spec_valid(kind, p, m, v))
                        continue;
                    pp_lists l;
                    CU_ASSERT_EQUAL_FATAL(pp_lists_build(kind, p, m, v, &l), TSR_OK);
                    for (int r = 0; r < p; r++)
                        check_rank_list(kind, &l, r);
                    check_channels(kind, &l);
                    pp_lists_free(&l);
                    checked++;
                }
            }
        }
    }
    /* 1F1B 80 + GPipe 80 v=1 + virtual (p>1, m%p==0) + interleaved */
    CU_ASSERT_TRUE(checked > 200);
}

/* --- simulation: deadlock, bubble, peak in flight ---------------------- */

/* Closed forms, from the schedules' definitions (not from the library). */
static int expected_peak(tsr_pp_schedule_kind kind, int p, int r, int m, int v)
{
    if (kind == TSR_PP_SCHEDULE_GPIPE)
        return m * v;
    if (kind == TSR_PP_SCHEDULE_1F1B)
        return p - r < m ? p - r : m;
    if (m == p)
        return m * v; /* Megatron runs every forward first */
    int warmup = 2 * (p - r - 1) + (v - 1) * p;
    return warmup + 1 < m * v ? warmup + 1 : m * v;
}

/*
 * The bubble. Give each chunk's FORWARD cost F and BACKWARD cost B,
 * communication 0. Each rank computes v*m*(F+B). The textbook step time
 * is (v*m + p - 1)(F+B):
 *   - v = 1 (GPipe, 1F1B): the last stage starts after the p-1 forwards
 *     ahead of it and the first stage ends p-1 backwards after the last
 *     stage's final backward, so each rank idles (p-1)(F+B) and the
 *     bubble is (p-1)/(m+p-1) of the step (Narayanan et al. 2021, sec.
 *     2.2.1: bubble / ideal time = (p-1)/m);
 *   - interleaved (sec. 2.2.2): with v chunks per rank the fill and the
 *     drain pass one chunk, not one stage, per step: bubble time
 *     (p-1)(t_f+t_b)/v where t_f = v*F, t_b = v*B are a whole stage's
 *     times, i.e. (p-1)(F+B) again, against an ideal v*m*(F+B): bubble /
 *     ideal = (p-1)/(v*m), so bubble / step = (p-1)/(v*m+p-1);
 *   - GPipe with v chunks runs the interleaved order forward-only, then
 *     backward-only, and by the same argument also idles (p-1)(F+B).
 * The assertion is exact, in integers: makespan = (v*m+p-1)(F+B) and for
 * every rank idle * (v*m+p-1) = makespan * (p-1); the library's
 * tsr_pp_schedule_bubble_theory() must give the same fraction.
 */
static void check_sim(tsr_pp_schedule_kind kind, int p, int m, int v, int64_t F, int64_t B,
                      tsr_pp_send_mode mode)
{
    pp_lists l;
    CU_ASSERT_EQUAL_FATAL(pp_lists_build(kind, p, m, v, &l), TSR_OK);
    tsr_pp_sim_options opt = {.forward_cost = F, .backward_cost = B, .send_mode = mode};
    tsr_pp_sim_rank_stats stats[8];
    int64_t makespan = -1;
    tsr_status st = tsr_pp_sim_run(p, m, v, pp_lists_view(&l), l.counts, &opt, stats, &makespan,
                                   NULL);
    CU_ASSERT_EQUAL(st, TSR_OK);
    if (st != TSR_OK) {
        fprintf(stderr, "%s p=%d m=%d v=%d: %s\n", tsr_pp_schedule_kind_name(kind), p, m, v,
                tsr_last_error());
        pp_lists_free(&l);
        return;
    }
    int64_t steps = (int64_t)v * m + p - 1;
    CU_ASSERT_EQUAL(makespan, steps * (F + B));
    for (int r = 0; r < p; r++) {
        CU_ASSERT_EQUAL(stats[r].busy, (int64_t)v * m * (F + B));
        CU_ASSERT_EQUAL(stats[r].idle * steps, makespan * (p - 1));
        CU_ASSERT_EQUAL(stats[r].idle, makespan - stats[r].busy);
        CU_ASSERT_TRUE(stats[r].wait <= stats[r].idle && stats[r].finish <= makespan);
        int want_peak = expected_peak(kind, p, r, m, v);
        CU_ASSERT_EQUAL(stats[r].peak_in_flight, want_peak);
        if (kind == TSR_PP_SCHEDULE_1F1B)
            CU_ASSERT_TRUE(stats[r].peak_in_flight <= p);
        tsr_pp_schedule_spec s = {kind, p, r, m, v};
        int promised = -1;
        CU_ASSERT_EQUAL(tsr_pp_schedule_max_in_flight(&s, &promised), TSR_OK);
        CU_ASSERT_EQUAL(promised, want_peak);
    }
    tsr_pp_schedule_spec s = {kind, p, 0, m, v};
    double theory = tsr_pp_schedule_bubble_theory(&s);
    CU_ASSERT_DOUBLE_EQUAL(theory, (double)(p - 1) / (double)steps, 1e-12);
    pp_lists_free(&l);
}

static void sweep_sim(int64_t F, int64_t B, tsr_pp_send_mode mode)
{
    for (int kind = 0; kind < TSR_PP_SCHEDULE_COUNT; kind++)
        for (int pi = 0; pi < NUM_PP_SIZES; pi++)
            for (int m = 1; m <= 16; m++)
                for (int v = 1; v <= 3; v++)
                    if (spec_valid(kind, pp_sizes[pi], m, v))
                        check_sim(kind, pp_sizes[pi], m, v, F, B, mode);
}

static void test_no_deadlock_and_bubble_rendezvous(void)
{
    sweep_sim(1, 2, TSR_PP_SEND_RENDEZVOUS);
}

static void test_no_deadlock_and_bubble_eager(void) { sweep_sim(1, 2, TSR_PP_SEND_EAGER); }

static void test_bubble_holds_for_other_costs(void)
{
    sweep_sim(1, 1, TSR_PP_SEND_RENDEZVOUS);
    sweep_sim(2, 3, TSR_PP_SEND_RENDEZVOUS);
}

static void test_sim_schedule_matches_run(void)
{
    tsr_pp_schedule_spec s = {TSR_PP_SCHEDULE_INTERLEAVED, 4, 2, 8, 2};
    tsr_pp_sim_options opt = {1, 2, TSR_PP_SEND_RENDEZVOUS};
    tsr_pp_sim_rank_stats stats[4];
    int64_t makespan = 0;
    CU_ASSERT_EQUAL(tsr_pp_sim_schedule(&s, &opt, stats, &makespan), TSR_OK);
    CU_ASSERT_EQUAL(makespan, (2 * 8 + 3) * 3);
    CU_ASSERT_EQUAL(stats[0].peak_in_flight, 2 * 3 + 4 + 1);
    CU_ASSERT_EQUAL(stats[0].wait + stats[0].busy, stats[0].finish);
}

/* --- exact lists written out by hand from Megatron's loops ------------- */

static void expect_list(tsr_pp_schedule_kind kind, int p, int r, int m, int v, bool compute_only,
                        const char *const *want, size_t n_want)
{
    tsr_pp_schedule_spec s = {kind, p, r, m, v};
    tsr_pp_action actions[128];
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_pp_schedule_build(&s, actions, 128, &n), TSR_OK);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (compute_only && actions[i].kind == TSR_PP_EXCHANGE)
            continue;
        char got[160];
        tsr_pp_action_format(&actions[i], got, sizeof got);
        if (j >= n_want || strcmp(got, want[j]) != 0) {
            CU_FAIL("action differs from the hand-written list");
            fprintf(stderr, "%s p=%d rank %d: action %zu is \"%s\", want \"%s\"\n",
                    tsr_pp_schedule_kind_name(kind), p, r, j, got, j < n_want ? want[j] : "(end)");
            return;
        }
        j++;
    }
    CU_ASSERT_EQUAL(j, n_want);
}

#define EXPECT(kind, p, r, m, v, compute_only, ...)                                               \
    do {                                                                                          \
        static const char *const want_[] = {__VA_ARGS__};                                         \
        expect_list(kind, p, r, m, v, compute_only, want_, sizeof want_ / sizeof want_[0]);       \
    } while (0)

static void test_1f1b_by_hand(void)
{
    /* p=2, m=3. Rank 0: one warm-up forward, two steady 1F1B, one
     * cool-down backward; the first stage sends no gradients. */
    EXPECT(TSR_PP_SCHEDULE_1F1B, 2, 0, 3, 1, false, "F 0.0", "{send_act 0.0 >1}", "F 1.0",
           "{send_act 1.0 >1, recv_grad 0.0 <1}", "B 0.0", "F 2.0",
           "{send_act 2.0 >1, recv_grad 1.0 <1}", "B 1.0", "{recv_grad 2.0 <1}", "B 2.0");
    /* Rank 1 (last): no warm-up; send_backward_recv_forward batches the
     * gradient going down with the next activation coming up. */
    EXPECT(TSR_PP_SCHEDULE_1F1B, 2, 1, 3, 1, false, "{recv_act 0.0 <0}", "F 0.0", "B 0.0",
           "{send_grad 0.0 >0, recv_act 1.0 <0}", "F 1.0", "B 1.0",
           "{send_grad 1.0 >0, recv_act 2.0 <0}", "F 2.0", "B 2.0", "{send_grad 2.0 >0}");
    /* A single stage just alternates. */
    EXPECT(TSR_PP_SCHEDULE_1F1B, 1, 0, 2, 1, false, "F 0.0", "B 0.0", "F 1.0", "B 1.0");
    /* Fewer microbatches than stages: rank 0 of 4 warms up with both. */
    EXPECT(TSR_PP_SCHEDULE_1F1B, 4, 0, 2, 1, true, "F 0.0", "F 1.0", "B 0.0", "B 1.0");
}

static void test_gpipe_by_hand(void)
{
    EXPECT(TSR_PP_SCHEDULE_GPIPE, 2, 1, 3, 1, false, "{recv_act 0.0 <0}", "F 0.0",
           "{recv_act 1.0 <0}", "F 1.0", "{recv_act 2.0 <0}", "F 2.0", "B 0.0",
           "{send_grad 0.0 >0}", "B 1.0", "{send_grad 1.0 >0}", "B 2.0", "{send_grad 2.0 >0}");
    EXPECT(TSR_PP_SCHEDULE_GPIPE, 2, 0, 3, 1, true, "F 0.0", "F 1.0", "F 2.0", "B 0.0", "B 1.0",
           "B 2.0");
}

static void test_interleaved_by_hand(void)
{
    /* p=2, m=4, v=2. Iterations come in groups of p*v = 4: forward order
     * (0,c0) (1,c0) (0,c1) (1,c1) (2,c0) (3,c0) (2,c1) (3,c1); backward
     * order the same groups with the chunks reversed. Rank 0 warms up
     * with 2(p-1) + (v-1)p = 4 forwards, rank 1 with 2. */
    EXPECT(TSR_PP_SCHEDULE_INTERLEAVED, 2, 0, 4, 2, true, "F 0.0", "F 1.0", "F 0.1", "F 1.1",
           "F 2.0", "B 0.1", "F 3.0", "B 1.1", "F 2.1", "B 0.0", "F 3.1", "B 1.0", "B 2.1", "B 3.1",
           "B 2.0", "B 3.0");
    EXPECT(TSR_PP_SCHEDULE_INTERLEAVED, 2, 1, 4, 2, true, "F 0.0", "F 1.0", "F 0.1", "B 0.1",
           "F 1.1", "B 1.1", "F 2.0", "B 0.0", "F 3.0", "B 1.0", "F 2.1", "B 2.1", "F 3.1", "B 3.1",
           "B 2.0", "B 3.0");
    /* The first exchanges of rank 0: the ring brings chunk 1's input
     * from rank 1, and the last warm-up exchange also fetches the first
     * gradient (send_forward_backward_recv_forward_backward). */
    EXPECT(TSR_PP_SCHEDULE_INTERLEAVED, 2, 0, 4, 2, false, "F 0.0", "{send_act 0.0 >1}", "F 1.0",
           "{send_act 1.0 >1, recv_act 0.1 <1}", "F 0.1", "{send_act 0.1 >1, recv_act 1.1 <1}",
           "F 1.1", "{send_act 1.1 >1, recv_grad 0.1 <1}", "F 2.0", "B 0.1",
           "{send_act 2.0 >1, send_grad 0.1 >1, recv_grad 1.1 <1}", "F 3.0", "B 1.1",
           "{send_act 3.0 >1, send_grad 1.1 >1, recv_act 2.1 <1, recv_grad 0.0 <1}", "F 2.1",
           "B 0.0", "{send_act 2.1 >1, recv_act 3.1 <1, recv_grad 1.0 <1}", "F 3.1", "B 1.0",
           "{send_act 3.1 >1, recv_grad 2.1 <1}", "B 2.1", "{send_grad 2.1 >1, recv_grad 3.1 <1}",
           "B 3.1", "{send_grad 3.1 >1, recv_grad 2.0 <1}", "B 2.0", "{recv_grad 3.0 <1}",
           "B 3.0");
    /* m == p: Megatron runs every forward first. */
    EXPECT(TSR_PP_SCHEDULE_INTERLEAVED, 2, 1, 2, 2, true, "F 0.0", "F 1.0", "F 0.1", "F 1.1",
           "B 0.1", "B 1.1", "B 0.0", "B 1.0");
}

/* Forwards before the first backward: Megatron's warm-up (+1 for the
 * steady state's leading forward). */
static void test_interleaved_warmup_counts(void)
{
    int p = 4, m = 8, v = 2;
    for (int r = 0; r < p; r++) {
        tsr_pp_schedule_spec s = {TSR_PP_SCHEDULE_INTERLEAVED, p, r, m, v};
        tsr_pp_action actions[256];
        size_t n = 0;
        CU_ASSERT_EQUAL_FATAL(tsr_pp_schedule_build(&s, actions, 256, &n), TSR_OK);
        int forwards = 0;
        for (size_t i = 0; i < n && actions[i].kind != TSR_PP_BACKWARD; i++)
            forwards += actions[i].kind == TSR_PP_FORWARD;
        CU_ASSERT_EQUAL(forwards, 2 * (p - r - 1) + (v - 1) * p + 1);
    }
}

/* --- the API's refusals and sizes -------------------------------------- */

static void expect_invalid(tsr_pp_schedule_kind kind, int p, int r, int m, int v, const char *word)
{
    tsr_pp_schedule_spec s = {kind, p, r, m, v};
    size_t n = 99;
    CU_ASSERT_EQUAL(tsr_pp_schedule_validate(&s), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_schedule_count(&s, &n), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(n, 0);
    if (strstr(tsr_last_error(), word) == NULL) {
        CU_FAIL("message lacks the expected word");
        fprintf(stderr, "want \"%s\" in: %s\n", word, tsr_last_error());
    }
    int peak = -1;
    CU_ASSERT_EQUAL(tsr_pp_schedule_max_in_flight(&s, &peak), TSR_ERR_INVALID_ARG);
    CU_ASSERT_TRUE(tsr_pp_schedule_bubble_theory(&s) < 0 || r < 0 || r >= p);
}

static void test_bad_specs_are_refused(void)
{
    expect_invalid(TSR_PP_SCHEDULE_1F1B, 0, 0, 4, 1, "pipeline size 0");
    expect_invalid(TSR_PP_SCHEDULE_1F1B, 4, 4, 4, 1, "rank 4");
    expect_invalid(TSR_PP_SCHEDULE_1F1B, 4, -1, 4, 1, "rank -1");
    expect_invalid(TSR_PP_SCHEDULE_GPIPE, 4, 0, 0, 1, "0 microbatches");
    expect_invalid(TSR_PP_SCHEDULE_GPIPE, 4, 0, 4, 0, "0 model chunks");
    expect_invalid(TSR_PP_SCHEDULE_1F1B, 4, 0, 8, 2, "interleaved schedule");
    expect_invalid(TSR_PP_SCHEDULE_INTERLEAVED, 4, 0, 6, 2, "not a multiple of the pipeline size 4");
    expect_invalid(TSR_PP_SCHEDULE_INTERLEAVED, 4, 0, 6, 1, "not a multiple");
    expect_invalid(TSR_PP_SCHEDULE_GPIPE, 4, 0, 6, 2, "not a multiple");
    expect_invalid(TSR_PP_SCHEDULE_INTERLEAVED, 1, 0, 4, 2, "at least 2 ranks");
    expect_invalid((tsr_pp_schedule_kind)7, 4, 0, 4, 1, "unknown kind 7");
    CU_ASSERT_EQUAL(tsr_pp_schedule_validate(NULL), TSR_ERR_INVALID_ARG);
    CU_ASSERT_STRING_EQUAL(tsr_pp_schedule_kind_name((tsr_pp_schedule_kind)7), "unknown");
    CU_ASSERT_STRING_EQUAL(tsr_pp_schedule_kind_name(TSR_PP_SCHEDULE_INTERLEAVED), "interleaved");
}

static void test_build_respects_capacity(void)
{
    tsr_pp_schedule_spec s = {TSR_PP_SCHEDULE_1F1B, 4, 1, 8, 1};
    size_t need = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_pp_schedule_count(&s, &need), TSR_OK);
    CU_ASSERT_TRUE_FATAL(need > 4 && need < 64);
    tsr_pp_action buf[64];
    memset(buf, 0x5a, sizeof buf);
    size_t n = 0;
    CU_ASSERT_EQUAL(tsr_pp_schedule_build(&s, buf, need - 1, &n), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(n, need);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "tsr_pp_schedule_count"));
    const unsigned char *guard = (const unsigned char *)&buf[need - 1];
    for (size_t i = 0; i < sizeof buf[0]; i++)
        CU_ASSERT_EQUAL(guard[i], 0x5a);
    CU_ASSERT_EQUAL(tsr_pp_schedule_build(&s, buf, need, &n), TSR_OK);
    CU_ASSERT_EQUAL(n, need);
    CU_ASSERT_EQUAL(tsr_pp_schedule_build(&s, NULL, 4, &n), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_pp_schedule_count(&s, NULL), TSR_ERR_INVALID_ARG);
    /* 1F1B with v = 1: m forwards, m backwards, and for a middle rank
     * one exchange before each forward's input ... counted by hand for
     * rank 1 of 4, m = 8: 2 warm-up (recv, F, send) = 6, one recv, 6
     * steady (F, X, B, X) = 24, 2 cool-down (recv, B, send) = 6. */
    CU_ASSERT_EQUAL(need, 6 + 1 + 24 + 6);
}

static void test_format_fits_any_buffer(void)
{
    tsr_pp_action a = {.kind = TSR_PP_EXCHANGE, .microbatch = -1, .chunk = -1, .num_ops = 2};
    a.ops[0] = (tsr_pp_p2p){TSR_PP_SEND_ACTIVATION, 1, 12, 0};
    a.ops[1] = (tsr_pp_p2p){TSR_PP_RECV_GRAD, 1, 3, 2};
    char big[128];
    int want = tsr_pp_action_format(&a, big, sizeof big);
    CU_ASSERT_STRING_EQUAL(big, "{send_act 12.0 >1, recv_grad 3.2 <1}");
    CU_ASSERT_EQUAL(want, (int)strlen(big));
    for (size_t size = 0; size < 12; size++) {
        char small[12];
        memset(small, 'x', sizeof small);
        CU_ASSERT_EQUAL(tsr_pp_action_format(&a, small, size), want);
        if (size > 0) {
            CU_ASSERT_EQUAL(strlen(small), size - 1);
            CU_ASSERT_EQUAL(strncmp(small, big, size - 1), 0);
        }
    }
}

static const tsr_test_case list_cases[] = {
    TSR_TEST(test_lists_are_complete_and_pair_up),
    TSR_TEST(test_1f1b_by_hand),
    TSR_TEST(test_gpipe_by_hand),
    TSR_TEST(test_interleaved_by_hand),
    TSR_TEST(test_interleaved_warmup_counts),
    TSR_TEST(test_bad_specs_are_refused),
    TSR_TEST(test_build_respects_capacity),
    TSR_TEST(test_format_fits_any_buffer),
};

static const tsr_test_case sim_cases[] = {
    TSR_TEST(test_no_deadlock_and_bubble_rendezvous),
    TSR_TEST(test_no_deadlock_and_bubble_eager),
    TSR_TEST(test_bubble_holds_for_other_costs),
    TSR_TEST(test_sim_schedule_matches_run),
};

int main(void)
{
    const tsr_test_suite suites[] = {
        TSR_SUITE("pipeline_schedule_lists", list_cases),
        TSR_SUITE("pipeline_schedule_simulated", sim_cases),
    };
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
