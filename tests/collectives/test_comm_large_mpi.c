/*
 * test_comm_large_mpi.c - the large-buffer paths of the MPI backend (the
 * ring all-reduce and the direct all-gather of collectives/mpi_ring.c,
 * taken from TSR_RING_MIN_BYTES up) under mpirun with 2, 3, 4 and 8 ranks:
 * exact results for every dtype and op, counts that do not divide by the
 * group size, in place and out of place, several in flight at once, and
 * results that are bitwise the same on every rank and from call to call
 * for values whose sum depends on the order; and that operations moving
 * in steps (rings, reduce's tree) advance while their owner waits on
 * another, in an order that differs between ranks; and that an
 * all-gather's or all-to-all's own block above 512 KiB, copied a slice
 * per poll (mpi.c), arrives whole.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "harness.h"

static tsr_comm *world;
static int me, np;

/* Element counts of 4-byte elements: the ring's threshold at this group
 * size (64 KiB x (p - 1)^2) itself, one above it that no group size
 * divides, and a large one. */
static size_t counts[3];

static void set_counts(void)
{
    size_t threshold = 64 * 1024 / 4 * (size_t)(np - 1) * (size_t)(np - 1);
    counts[0] = threshold;
    counts[1] = threshold * 3 / 2 + 7;
    counts[2] = threshold * 4 + 1000003;
}

static float ival(int rank, size_t i)
{
    return (float)((rank + 1) * (int)(i % 17 + 1));
}

static void test_ring_allreduce_fp32_exact(void)
{
    for (int c = 0; c < 3; c++) {
        size_t n = counts[c];
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        for (size_t i = 0; i < n; i++)
            a[i] = ival(me, i);
        CU_ASSERT_EQUAL(tsr_comm_allreduce(a, b, n, TSR_COMM_FP32, TSR_COMM_SUM, world, NULL),
                        TSR_OK);
        size_t bad = 0;
        float ranks = (float)(np * (np + 1) / 2);
        for (size_t i = 0; i < n; i++)
            bad += b[i] != ranks * (float)(i % 17 + 1);
        CU_ASSERT_EQUAL(bad, 0);
        /* in place, and max: the largest value sits on a rank that depends on i */
        for (size_t i = 0; i < n; i++)
            a[i] = (float)((me * 7 + (int)(i % 1000)) % 11) - 5.0f;
        CU_ASSERT_EQUAL(tsr_comm_allreduce(a, a, n, TSR_COMM_FP32, TSR_COMM_MAX, world, NULL),
                        TSR_OK);
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = -1e30f;
            for (int r = 0; r < np; r++) {
                float v = (float)((r * 7 + (int)(i % 1000)) % 11) - 5.0f;
                want = v > want ? v : want;
            }
            bad += a[i] != want;
        }
        CU_ASSERT_EQUAL(bad, 0);
        free(a);
        free(b);
    }
}

static void test_ring_allreduce_other_dtypes(void)
{
    size_t n = counts[1] * 2; /* the int64 and fp64 halves reach the threshold */
    uint16_t *h = malloc(n * sizeof *h), *hs = malloc(n * sizeof *hs);
    int32_t *i32 = malloc(n * sizeof *i32);
    int64_t *i64 = malloc(n * sizeof *i64);
    double *f64 = malloc(n * sizeof *f64), *f64s = malloc(n * sizeof *f64s);
    for (size_t i = 0; i < n; i++) {
        h[i] = tsr_float_to_bf16((float)(me + 1 + (int)(i % 5)));
        i32[i] = (me + 1) * ((int)(i % 9) - 4);
        i64[i] = 1000000000000LL * (int64_t)(i % 3 + 1) + me;
        f64[i] = 0.5 * (me + 1) + (double)(i % 4);
    }
    CU_ASSERT_EQUAL(tsr_comm_allreduce(h, hs, n, TSR_COMM_BF16, TSR_COMM_SUM, world, NULL), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(i32, i32, n, TSR_COMM_INT32, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(i64, i64, n / 2, TSR_COMM_INT64, TSR_COMM_MAX, world, NULL),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(f64, f64s, n / 2, TSR_COMM_FP64, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        int want = 0;
        for (int r = 0; r < np; r++)
            want += r + 1 + (int)(i % 5);
        bad += tsr_bf16_to_float(hs[i]) != (float)want;
        bad += i32[i] != ((int)(i % 9) - 4) * np * (np + 1) / 2;
    }
    for (size_t i = 0; i < n / 2; i++) {
        bad += i64[i] != 1000000000000LL * (int64_t)(i % 3 + 1) + np - 1;
        bad += f64s[i] != 0.25 * np * (np + 1) + (double)np * (double)(i % 4);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(h);
    free(hs);
    free(i32);
    free(i64);
    free(f64);
    free(f64s);
}

/* A hash of a buffer's bits, to compare results across ranks. */
static uint64_t bits_hash(const float *x, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        h = (h ^ u) * 1099511628211ULL;
    }
    return h;
}

static void test_ring_allreduce_same_bits_everywhere_and_always(void)
{
    size_t n = counts[2];
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    /* values whose float sum depends on the order of the additions */
    for (size_t i = 0; i < n; i++)
        a[i] = sinf((float)(i + 1) * 0.37f + (float)me) * (float)(1 << (me % 7)) + 1e-3f * me;
    CU_ASSERT_EQUAL(tsr_comm_allreduce(a, b, n, TSR_COMM_FP32, TSR_COMM_SUM, world, NULL), TSR_OK);
    memcpy(c, a, n * sizeof *c);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(c, c, n, TSR_COMM_FP32, TSR_COMM_SUM, world, NULL), TSR_OK);
    CU_ASSERT_EQUAL(memcmp(b, c, n * sizeof *b), 0); /* in place == out of place */
    uint64_t mine = bits_hash(b, n);
    uint64_t *all = malloc((size_t)np * sizeof *all);
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int differ = 0;
    for (int r = 0; r < np; r++)
        differ += all[r] != mine;
    CU_ASSERT_EQUAL(differ, 0);
    /* and the sums are right: against a double-precision sum, 1e-6 of the
     * largest term */
    double worst = 0.0;
    for (size_t i = 0; i < n; i += 997) {
        double want = 0.0;
        for (int r = 0; r < np; r++)
            want += (double)(sinf((float)(i + 1) * 0.37f + (float)r) * (float)(1 << (r % 7)) +
                             1e-3f * r);
        double e = fabs((double)b[i] - want) / 64.0;
        worst = e > worst ? e : worst;
    }
    CU_ASSERT(worst < 1e-6);
    free(all);
    free(a);
    free(b);
    free(c);
}

static void test_direct_allgather(void)
{
    size_t c = 64 * 1024 / 4 * 3 + 7, total = c * (size_t)np;
    float *a = malloc(c * sizeof *a), *b = malloc(total * sizeof *b);
    for (size_t i = 0; i < c; i++)
        a[i] = (float)(me * 1000003 + (int)i);
    CU_ASSERT_EQUAL(tsr_comm_allgather(a, b, c, TSR_COMM_FP32, world, NULL), TSR_OK);
    size_t bad = 0;
    for (int r = 0; r < np; r++)
        for (size_t i = 0; i < c; i++)
            bad += b[(size_t)r * c + i] != (float)(r * 1000003 + (int)i);
    CU_ASSERT_EQUAL(bad, 0);
    memset(b, 0, total * sizeof *b);
    for (size_t i = 0; i < c; i++)
        b[(size_t)me * c + i] = (float)(me * 1000003 + (int)i);
    CU_ASSERT_EQUAL(tsr_comm_allgather(b + (size_t)me * c, b, c, TSR_COMM_FP32, world, NULL),
                    TSR_OK);
    bad = 0;
    for (int r = 0; r < np; r++)
        for (size_t i = 0; i < c; i++)
            bad += b[(size_t)r * c + i] != (float)(r * 1000003 + (int)i);
    CU_ASSERT_EQUAL(bad, 0);
    free(a);
    free(b);
}

static void test_several_in_flight(void)
{
    size_t n = counts[1], c = 64 * 1024 / 4;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    float *g = malloc(c * sizeof *g), *gathered = malloc(c * (size_t)np * sizeof *gathered);
    for (size_t i = 0; i < n; i++) {
        x[i] = ival(me, i);
        y[i] = ival(me, i + 5);
    }
    for (size_t i = 0; i < c; i++)
        g[i] = (float)(me + (int)i);
    tsr_comm_request *r[3] = {NULL, NULL, NULL};
    CU_ASSERT_EQUAL(tsr_comm_allreduce(x, x, n, TSR_COMM_FP32, TSR_COMM_SUM, world, &r[0]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allgather(g, gathered, c, TSR_COMM_FP32, world, &r[1]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(y, y, n, TSR_COMM_FP32, TSR_COMM_SUM, world, &r[2]), TSR_OK);
    /* completed in another order than started */
    CU_ASSERT_EQUAL(tsr_comm_wait(&r[2]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_wait(&r[0]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_wait(&r[1]), TSR_OK);
    size_t bad = 0;
    float ranks = (float)(np * (np + 1) / 2);
    for (size_t i = 0; i < n; i++) {
        bad += x[i] != ranks * (float)(i % 17 + 1);
        bad += y[i] != ranks * (float)((i + 5) % 17 + 1);
    }
    for (int q = 0; q < np; q++)
        for (size_t i = 0; i < c; i++)
            bad += gathered[(size_t)q * c + i] != (float)(q + (int)i);
    CU_ASSERT_EQUAL(bad, 0);
    free(x);
    free(y);
    free(g);
    free(gathered);
}

/* Own blocks of 3 MiB + 52 bytes (int32: every element distinct): two
 * all-gathers in flight finished in reverse order through tsr_comm_test,
 * an all-to-all, and an all-to-all(v) whose own block is the large one. */
static int32_t tag(int from, int to, size_t i)
{
    return (int32_t)((size_t)from * 100000007u + (size_t)to * 1000003u + i);
}

static void test_own_block_copied_between_polls(void)
{
    size_t c = (size_t)3 * 1024 * 1024 / 4 + 13, total = c * (size_t)np;
    int32_t *a = malloc(c * sizeof *a), *b = malloc(c * sizeof *b);
    int32_t *ga = malloc(total * sizeof *ga), *gb = malloc(total * sizeof *gb);
    for (size_t i = 0; i < c; i++) {
        a[i] = tag(me, 0, i);
        b[i] = tag(me, 1, i);
    }
    tsr_comm_request *r[2] = {NULL, NULL};
    CU_ASSERT_EQUAL(tsr_comm_allgather(a, ga, c, TSR_COMM_INT32, world, &r[0]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allgather(b, gb, c, TSR_COMM_INT32, world, &r[1]), TSR_OK);
    for (int k = 1; k >= 0; k--) {
        bool done = false;
        while (!done)
            CU_ASSERT_EQUAL_FATAL(tsr_comm_test(&r[k], &done), TSR_OK);
    }
    size_t bad = 0;
    for (int q = 0; q < np; q++)
        for (size_t i = 0; i < c; i++)
            bad += (ga[(size_t)q * c + i] != tag(q, 0, i)) +
                   (gb[(size_t)q * c + i] != tag(q, 1, i));
    CU_ASSERT_EQUAL(bad, 0);

    /* all-to-all: block q of rank me's send goes to rank q */
    for (int q = 0; q < np; q++)
        for (size_t i = 0; i < c; i++)
            ga[(size_t)q * c + i] = tag(me, q, i);
    CU_ASSERT_EQUAL(tsr_comm_alltoall(ga, gb, c, TSR_COMM_INT32, world, NULL), TSR_OK);
    bad = 0;
    for (int q = 0; q < np; q++)
        for (size_t i = 0; i < c; i++)
            bad += gb[(size_t)q * c + i] != tag(q, me, i);
    CU_ASSERT_EQUAL(bad, 0);

    /* all-to-all(v): c elements to itself, 1000 + q to each other rank q */
    size_t *sc = malloc(4 * (size_t)np * sizeof *sc), *sd = sc + np, *rc = sd + np, *rd = rc + np;
    size_t at = 0;
    for (int q = 0; q < np; q++) {
        sc[q] = q == me ? c : 1000 + (size_t)q;
        sd[q] = at;
        for (size_t i = 0; i < sc[q]; i++)
            ga[at + i] = tag(me, q, i);
        at += sc[q];
    }
    at = 0;
    for (int q = 0; q < np; q++) {
        rc[q] = q == me ? c : 1000 + (size_t)me;
        rd[q] = at;
        at += rc[q];
    }
    CU_ASSERT_EQUAL(tsr_comm_alltoallv(ga, sc, sd, gb, rc, rd, TSR_COMM_INT32, world, NULL),
                    TSR_OK);
    bad = 0;
    for (int q = 0; q < np; q++)
        for (size_t i = 0; i < rc[q]; i++)
            bad += gb[rd[q] + i] != tag(q, me, i);
    CU_ASSERT_EQUAL(bad, 0);
    free(sc);
    free(a);
    free(b);
    free(ga);
    free(gb);
}

/* Two rings on one group, advanced in an order that differs between ranks:
 * even ranks drive the second to its end before touching the first, odd
 * ranks the other way round. Their messages must not cross. */
static void test_rings_advanced_in_rank_dependent_order(void)
{
    /* different sizes: messages that crossed would not fit */
    size_t n = counts[1], ny = counts[1] + (size_t)np;
    float *x = malloc(n * sizeof *x), *y = malloc(ny * sizeof *y);
    for (size_t i = 0; i < n; i++)
        x[i] = ival(me, i);
    for (size_t i = 0; i < ny; i++)
        y[i] = -ival(me, i + 3);
    tsr_comm_request *rx = NULL, *ry = NULL;
    CU_ASSERT_EQUAL(tsr_comm_allreduce(x, x, n, TSR_COMM_FP32, TSR_COMM_SUM, world, &rx), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(y, y, ny, TSR_COMM_FP32, TSR_COMM_SUM, world, &ry), TSR_OK);
    if (me % 2 == 0) {
        bool done = false;
        tsr_status st = TSR_OK;
        while (!done && st == TSR_OK)
            st = tsr_comm_test(&ry, &done);
        CU_ASSERT_EQUAL(st, TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_wait(&rx), TSR_OK);
    } else {
        CU_ASSERT_EQUAL(tsr_comm_wait(&rx), TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_wait(&ry), TSR_OK);
    }
    size_t bad = 0;
    float ranks = (float)(np * (np + 1) / 2);
    for (size_t i = 0; i < n; i++)
        bad += x[i] != ranks * (float)(i % 17 + 1);
    for (size_t i = 0; i < ny; i++)
        bad += y[i] != -ranks * (float)((i + 3) % 17 + 1);
    CU_ASSERT_EQUAL(bad, 0);
    free(x);
    free(y);
}

/* The same for reduce's tree (any size): a rank between the root and a
 * leaf forwards only when polled, so waiting on another request must
 * advance it too. */
static void test_trees_advanced_in_rank_dependent_order(void)
{
    enum { N = 100 };
    float x[N], y[N], rx_out[N], ry_out[N];
    for (int i = 0; i < N; i++) {
        x[i] = ival(me, (size_t)i);
        y[i] = 2.0f * ival(me, (size_t)i);
    }
    tsr_comm_request *rx = NULL, *ry = NULL;
    CU_ASSERT_EQUAL(tsr_comm_reduce(x, rx_out, N, TSR_COMM_FP32, TSR_COMM_SUM, 0, world, &rx),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_reduce(y, ry_out, N, TSR_COMM_FP32, TSR_COMM_SUM, 0, world, &ry),
                    TSR_OK);
    /* a parent (even relative rank 2k) and its children wait in
     * opposite orders: rank 0 and 1 one way, 2 and 3 the other, ... */
    if ((me / 2) % 2 == 0) {
        CU_ASSERT_EQUAL(tsr_comm_wait(&ry), TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_wait(&rx), TSR_OK);
    } else {
        CU_ASSERT_EQUAL(tsr_comm_wait(&rx), TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_wait(&ry), TSR_OK);
    }
    if (me == 0) {
        int bad = 0;
        float ranks = (float)(np * (np + 1) / 2);
        for (int i = 0; i < N; i++)
            bad += rx_out[i] != ranks * (float)(i % 17 + 1) ||
                   ry_out[i] != 2.0f * ranks * (float)(i % 17 + 1);
        CU_ASSERT_EQUAL(bad, 0);
    }
}

/* A ring on one group advances while its owner waits on another: even
 * ranks wait for a world barrier first, which the odd ones reach only
 * once the ring on the other group is done. */
static void test_progress_across_groups(void)
{
    tsr_comm *other = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_split(world, 0, me, "other", &other), TSR_OK);
    size_t n = counts[1];
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = ival(me, i);
    tsr_comm_request *ring = NULL, *barrier = NULL;
    CU_ASSERT_EQUAL(tsr_comm_allreduce(x, x, n, TSR_COMM_FP32, TSR_COMM_SUM, other, &ring), TSR_OK);
    if (me % 2 == 0) {
        CU_ASSERT_EQUAL(tsr_comm_barrier(world, &barrier), TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_wait(&barrier), TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_wait(&ring), TSR_OK);
    } else {
        CU_ASSERT_EQUAL(tsr_comm_wait(&ring), TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_barrier(world, NULL), TSR_OK);
    }
    size_t bad = 0;
    float ranks = (float)(np * (np + 1) / 2);
    for (size_t i = 0; i < n; i++)
        bad += x[i] != ranks * (float)(i % 17 + 1);
    CU_ASSERT_EQUAL(bad, 0);
    free(x);
    tsr_comm_destroy(other);
}

static void test_create_world(void)
{
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    set_counts();
    tsr_comm_options opts = {TSR_BACKEND_MPI, 120.0, "world", NULL};
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK);
}

static void test_destroy_world(void)
{
    tsr_comm_destroy(world);
    world = NULL;
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_create_world),
    TSR_TEST(test_ring_allreduce_fp32_exact),
    TSR_TEST(test_ring_allreduce_other_dtypes),
    TSR_TEST(test_ring_allreduce_same_bits_everywhere_and_always),
    TSR_TEST(test_direct_allgather),
    TSR_TEST(test_several_in_flight),
    TSR_TEST(test_own_block_copied_between_polls),
    TSR_TEST(test_rings_advanced_in_rank_dependent_order),
    TSR_TEST(test_trees_advanced_in_rank_dependent_order),
    TSR_TEST(test_progress_across_groups),
    TSR_TEST(test_destroy_world),
};

int main(int argc, char **argv)
{
    const tsr_test_suite suites[] = {TSR_SUITE("comm_large_mpi", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
