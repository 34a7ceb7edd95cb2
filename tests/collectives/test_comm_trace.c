/*
 * test_comm_trace.c - the ring of recent calls and what the watchdog reads
 * from it (collectives/comm_trace.h), on rings filled by the recording
 * functions themselves, without MPI: a rank's state, where members of a
 * group diverge, the ring's wrap-around and the report file's text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm_trace.h"
#include "harness.h"

enum { MEMBERS = 4 };

static const tsr_call_site loop_site = {"train_step", "trainer.c:120"};
static const tsr_call_site other_site = {"eval_step", "eval.c:40"};

/* A process's trace with no window: recording works on the private image. */
static tsr_trace *trace_new(void)
{
    tsr_trace *t = calloc(1, sizeof *t);
    t->image = &t->private_image;
    t->image->header.idle_since_ns = tsr_trace_now_ns();
    return t;
}

/* n blocking all-reduces of 64 B on tp, numbered from 1. */
static void record_allreduces(tsr_trace *t, int n, tsr_call_site site)
{
    for (int i = 1; i <= n; i++) {
        uint64_t s = tsr_trace_begin(t, "tp", (uint64_t)i, TSR_COMM_KIND_ALLREDUCE, -1, 64, site);
        tsr_trace_wait_begin(t, s, site);
        tsr_trace_end(t, s);
        tsr_trace_wait_end(t);
    }
}

/* A call started and being waited for: what a blocked rank shows. */
static void record_waiting(tsr_trace *t, const char *group, uint64_t seq, tsr_comm_kind kind,
                           uint64_t bytes, tsr_call_site site)
{
    uint64_t s = tsr_trace_begin(t, group, seq, kind, -1, bytes, site);
    tsr_trace_wait_begin(t, s, site);
}

static void test_state_of_waiting_and_computing_ranks(void)
{
    tsr_trace *t = trace_new();
    char state[512];
    tsr_trace_describe_state(t->image, tsr_trace_now_ns(), state, sizeof state);
    CU_ASSERT_PTR_NOT_NULL(strstr(state, "no communication call since the world"));

    record_allreduces(t, 3, loop_site);
    int64_t later = tsr_trace_now_ns() + 2500000000LL; /* 2.5 s on */
    tsr_trace_describe_state(t->image, later, state, sizeof state);
    CU_ASSERT_PTR_NOT_NULL(strstr(state, "in computation since 2.5 s"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(state, "its last call: allreduce #3 on tp (64 B, from train_step (trainer.c:120))"));

    record_waiting(t, "dp", 1, TSR_COMM_KIND_REDUCE_SCATTER, 4096, other_site);
    tsr_trace_describe_state(t->image, tsr_trace_now_ns(), state, sizeof state);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(state, "for reduce_scatter #1 on dp (4096 B, from eval_step (eval.c:40))"));
    CU_ASSERT_PTR_NULL(strstr(state, "in eval_step")); /* waits where it was made */
    free(t);
}

static void test_wait_elsewhere_names_both_sites(void)
{
    tsr_trace *t = trace_new();
    uint64_t s = tsr_trace_begin(t, "dp", 7, TSR_COMM_KIND_ALLREDUCE, -1, 8, loop_site);
    tsr_trace_wait_begin(t, s, other_site); /* started in one place, waited on in another */
    char state[512];
    tsr_trace_describe_state(t->image, tsr_trace_now_ns(), state, sizeof state);
    CU_ASSERT_PTR_NOT_NULL(strstr(state, "in eval_step (eval.c:40) for allreduce #7 on dp"));
    CU_ASSERT_PTR_NOT_NULL(strstr(state, "from train_step (trainer.c:120)"));
    free(t);
}

static void test_ring_wraps_and_keeps_the_newest(void)
{
    tsr_trace *t = trace_new();
    int n = TSR_TRACE_RING + 10;
    record_allreduces(t, n, loop_site);
    CU_ASSERT_EQUAL(t->image->header.serial, (uint64_t)n);
    CU_ASSERT_PTR_NULL(tsr_trace_find(t->image, 1));
    CU_ASSERT_PTR_NULL(tsr_trace_find(t->image, 10));
    CU_ASSERT_PTR_NOT_NULL(tsr_trace_find(t->image, 11));
    const tsr_trace_entry *last = tsr_trace_find(t->image, (uint64_t)n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    CU_ASSERT_EQUAL(last->seq, (uint64_t)n);
    CU_ASSERT_TRUE(last->end_ns >= last->start_ns);
    CU_ASSERT_PTR_EQUAL(tsr_trace_find_seq(t->image, "tp", 0), last);
    CU_ASSERT_PTR_NULL(tsr_trace_find_seq(t->image, "tp", 5));
    CU_ASSERT_PTR_NULL(tsr_trace_find_seq(t->image, "dp", 0));
    free(t);
}

/* Four members of tp; world ranks 10..13. */
typedef struct group_fixture {
    tsr_trace *t[MEMBERS];
    tsr_trace_image images[MEMBERS];
    bool answered[MEMBERS];
    uint64_t seqs[MEMBERS];
    int world_ranks[MEMBERS];
} group_fixture;

static group_fixture *fixture_new(void)
{
    group_fixture *f = calloc(1, sizeof *f);
    for (int r = 0; r < MEMBERS; r++) {
        f->t[r] = trace_new();
        f->answered[r] = true;
        f->world_ranks[r] = 10 + r;
    }
    return f;
}

static void fixture_snapshot(group_fixture *f)
{
    for (int r = 0; r < MEMBERS; r++) {
        f->images[r] = *f->t[r]->image;
        const tsr_trace_entry *e = tsr_trace_find_seq(&f->images[r], "tp", 0);
        f->seqs[r] = e != NULL ? e->seq : 0;
    }
}

static void fixture_free(group_fixture *f)
{
    for (int r = 0; r < MEMBERS; r++)
        free(f->t[r]);
    free(f);
}

static void diagnose(group_fixture *f, uint64_t my_seq, char *msg, size_t len)
{
    msg[0] = '\0';
    tsr_trace_diagnose(msg, len, "tp", my_seq, MEMBERS, f->world_ranks, f->images, f->answered,
                       f->seqs, tsr_trace_now_ns());
}

static void test_diagnosis_of_a_rank_in_computation(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++) {
        record_allreduces(f->t[r], 3, loop_site);
        if (r != 1)
            record_waiting(f->t[r], "tp", 4, TSR_COMM_KIND_ALLREDUCE, 64, loop_site);
    }
    fixture_snapshot(f);
    char msg[4096];
    diagnose(f, 4, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "world rank 11 is behind on tp: made 3 collectives there, "
                                       "not #4; in computation since"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "slow or stuck outside communication"));
    CU_ASSERT_PTR_NULL(strstr(msg, "world rank 10 is behind"));
    CU_ASSERT_PTR_NULL(strstr(msg, "differ")); /* the calls made all match */
    fixture_free(f);
}

static void test_diagnosis_of_a_skipped_collective(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++) {
        record_allreduces(f->t[r], 5, loop_site);
        if (r == 1)
            record_waiting(f->t[r], "world", 2, TSR_COMM_KIND_BARRIER, 0, other_site);
        else
            record_waiting(f->t[r], "tp", 6, TSR_COMM_KIND_ALLREDUCE, 64, loop_site);
    }
    fixture_snapshot(f);
    char msg[4096];
    diagnose(f, 6, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "world rank 11 is behind on tp: made 5 collectives"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, "for barrier #2 on world (0 B, from eval_step (eval.c:40))"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "waiting in another call, so this one was skipped"));
    fixture_free(f);
}

static void test_diagnosis_names_the_first_differing_call(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++) {
        record_allreduces(f->t[r], 3, loop_site);
        if (r == 2)
            record_waiting(f->t[r], "tp", 4, TSR_COMM_KIND_ALLGATHER, 256, other_site);
        else
            record_waiting(f->t[r], "tp", 4, TSR_COMM_KIND_ALLREDUCE, 64, loop_site);
    }
    fixture_snapshot(f);
    char msg[4096];
    diagnose(f, 4, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "The calls first differ at tp #4: world ranks 10, 11, 13: "
                                       "allreduce (64 B) from train_step (trainer.c:120); world "
                                       "rank 12: allgather (256 B) from eval_step (eval.c:40)"));
    CU_ASSERT_PTR_NULL(strstr(msg, "behind"));
    fixture_free(f);
}

static void test_same_operation_from_another_site_differs(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++) {
        record_allreduces(f->t[r], 2, loop_site);
        /* rank 3 took another branch: same op and size, other code */
        uint64_t s = tsr_trace_begin(f->t[r], "tp", 3, TSR_COMM_KIND_ALLREDUCE, -1, 64,
                                     r == 3 ? other_site : loop_site);
        tsr_trace_wait_begin(f->t[r], s, r == 3 ? other_site : loop_site);
    }
    fixture_snapshot(f);
    char msg[4096];
    diagnose(f, 3, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "first differ at tp #3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "world rank 13: allreduce (64 B) from eval_step"));
    fixture_free(f);
}

static void test_members_in_one_state_are_listed_together(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++) {
        record_allreduces(f->t[r], 1, loop_site);
        if (r == 0)
            record_waiting(f->t[r], "tp", 2, TSR_COMM_KIND_ALLREDUCE, 64, loop_site);
    }
    fixture_snapshot(f);
    /* seconds apart, as real ranks are: the same state all the same */
    for (int r = 1; r < MEMBERS; r++)
        f->images[r].header.idle_since_ns -= (int64_t)r * 1700000000LL;
    char msg[4096];
    diagnose(f, 2, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "world ranks 11, 12, 13 are behind on tp"));
    fixture_free(f);
}

static void test_alltoallv_sizes_may_differ(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++) {
        record_allreduces(f->t[r], 2, loop_site);
        /* each rank sends what it routes: the byte counts differ by design */
        record_waiting(f->t[r], "tp", 3, TSR_COMM_KIND_ALLTOALLV, (uint64_t)(100 * (r + 1)),
                       loop_site);
    }
    fixture_snapshot(f);
    char msg[4096];
    diagnose(f, 3, msg, sizeof msg);
    CU_ASSERT_PTR_NULL(strstr(msg, "differ"));
    fixture_free(f);
}

static void test_long_group_names_are_found(void)
{
    tsr_trace *t = trace_new();
    const char *name = "expert-data-parallel-group-7"; /* 28 characters */
    uint64_t s = tsr_trace_begin(t, name, 4, TSR_COMM_KIND_ALLREDUCE, -1, 8, loop_site);
    CU_ASSERT_PTR_EQUAL(tsr_trace_find_seq(t->image, name, 4), tsr_trace_find(t->image, s));
    CU_ASSERT_PTR_NULL(tsr_trace_find_seq(t->image, "expert-data-parallel-group-8", 4));
    free(t);
}

static void test_torn_entries_are_not_read(void)
{
    tsr_trace *t = trace_new();
    record_allreduces(t, 3, loop_site);
    tsr_trace_image copy = *t->image;
    /* a copy taken while the owner refilled slot 2: its closing serial is
     * another call's */
    copy.ring[1].serial_end = 2 + TSR_TRACE_RING;
    CU_ASSERT_PTR_NULL(tsr_trace_find(&copy, 2));
    CU_ASSERT_PTR_NULL(tsr_trace_find_seq(&copy, "tp", 2));
    CU_ASSERT_PTR_NOT_NULL(tsr_trace_find(&copy, 3));
    free(t);
}

static void test_paths_in_sites_are_cut_to_the_file(void)
{
    tsr_trace *t = trace_new();
    tsr_call_site site = {"f", "/a/very/long/build/path/that/would/push/the/line/out/of/the/entry/"
                               "sharding/net_step.c:414"};
    uint64_t s = tsr_trace_begin(t, "tp", 1, TSR_COMM_KIND_ALLREDUCE, -1, 8, site);
    CU_ASSERT_STRING_EQUAL(tsr_trace_find(t->image, s)->where, "net_step.c:414");
    free(t);
}

static void test_unanswered_members_are_not_guessed(void)
{
    group_fixture *f = fixture_new();
    for (int r = 0; r < MEMBERS; r++)
        record_allreduces(f->t[r], r == 1 ? 1 : 2, loop_site);
    fixture_snapshot(f);
    f->answered[1] = false;
    char msg[4096];
    diagnose(f, 3, msg, sizeof msg);
    CU_ASSERT_PTR_NULL(strstr(msg, "world rank 11"));
    fixture_free(f);
}

static void test_report_lists_the_ring_oldest_first(void)
{
    tsr_trace *t = trace_new();
    record_allreduces(t, TSR_TRACE_RING + 2, loop_site);
    record_waiting(t, "dp", 1, TSR_COMM_KIND_ALLGATHER, 512, other_site);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    tsr_trace_print_report(out, 5, t->image, 7, tsr_trace_now_ns());
    fclose(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "recent communication calls of world rank 5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "written by world rank 7 from a remote read"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# now: waiting for"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# 67 calls made"));
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 5 + TSR_TRACE_RING); /* 4 comment lines, a heading, the ring */
    const char *first = strstr(text, "\n4 "), *last = strstr(text, "\n67 ");
    CU_ASSERT_PTR_NOT_NULL(first);
    CU_ASSERT_PTR_NOT_NULL(last);
    CU_ASSERT_PTR_NULL(strstr(text, "\n3 "));
    CU_ASSERT_TRUE(first < last);
    CU_ASSERT_PTR_NOT_NULL(strstr(last, "allgather"));
    CU_ASSERT_PTR_NOT_NULL(strstr(last, "-1.000  eval_step (eval.c:40)")); /* still in flight */
    free(text);
    free(t);
}

static void test_long_names_are_cut_not_overrun(void)
{
    tsr_trace *t = trace_new();
    char func[200], where[200];
    memset(func, 'f', sizeof func - 1);
    func[sizeof func - 1] = '\0';
    memset(where, 'w', sizeof where - 1);
    where[sizeof where - 1] = '\0';
    tsr_call_site site = {func, where};
    uint64_t s = tsr_trace_begin(t, "a-group-name-longer-than-sixteen", 1, TSR_COMM_KIND_BARRIER,
                                 -1, 0, site);
    const tsr_trace_entry *e = tsr_trace_find(t->image, s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(strlen(e->func), TSR_TRACE_FUNC_LEN - 1);
    CU_ASSERT_EQUAL(strlen(e->where), TSR_TRACE_WHERE_LEN - 1);
    CU_ASSERT_EQUAL(strlen(e->group), TSR_TRACE_GROUP_LEN - 1);
    free(t);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_state_of_waiting_and_computing_ranks),
    TSR_TEST(test_wait_elsewhere_names_both_sites),
    TSR_TEST(test_ring_wraps_and_keeps_the_newest),
    TSR_TEST(test_diagnosis_of_a_rank_in_computation),
    TSR_TEST(test_diagnosis_of_a_skipped_collective),
    TSR_TEST(test_diagnosis_names_the_first_differing_call),
    TSR_TEST(test_same_operation_from_another_site_differs),
    TSR_TEST(test_members_in_one_state_are_listed_together),
    TSR_TEST(test_alltoallv_sizes_may_differ),
    TSR_TEST(test_long_group_names_are_found),
    TSR_TEST(test_torn_entries_are_not_read),
    TSR_TEST(test_paths_in_sites_are_cut_to_the_file),
    TSR_TEST(test_unanswered_members_are_not_guessed),
    TSR_TEST(test_report_lists_the_ring_oldest_first),
    TSR_TEST(test_long_names_are_cut_not_overrun),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("comm_trace", cases)};
    return tsr_test_main(suites, 1);
}
