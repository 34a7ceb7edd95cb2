/*
 * test_comm_mpi.c - every collective of comm.h against results computed
 * here element by element, under mpirun with 2, 3, 4 and 8 ranks: odd sizes,
 * counts not divisible by the group size, zero length, in-place forms,
 * overlapping non-blocking calls, bf16, and the byte counters.
 *
 * Values are small integers so that every reduction order gives the same
 * exact result (bf16 holds integers up to 256 exactly).
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "harness.h"

static tsr_comm *world;
static int me, np;

static const size_t sizes[] = {0, 1, 7, 1001};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static float fval(int rank, size_t i)
{
    return (float)((rank + 1) * (int)(i % 13 + 1));
}

/* element i of the sum over all ranks of fval */
static float fval_sum(size_t i)
{
    float sum = 0;
    for (int r = 0; r < np; r++)
        sum += fval(r, i);
    return sum;
}

static void test_allreduce_fp32_sum_and_max(void)
{
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        float *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b);
        for (size_t i = 0; i < n; i++)
            a[i] = fval(me, i);
        CU_ASSERT_EQUAL(tsr_comm_allreduce(a, b, n, TSR_COMM_FP32, TSR_COMM_SUM, world, NULL),
                        TSR_OK);
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            bad += b[i] != fval_sum(i);
        }
        CU_ASSERT_EQUAL(bad, 0);
        /* max, in place; the largest value sits on a rank that depends on i */
        for (size_t i = 0; i < n; i++)
            a[i] = (float)((me * 7 + (int)i) % 11) - 5.0f;
        CU_ASSERT_EQUAL(tsr_comm_allreduce(a, a, n, TSR_COMM_FP32, TSR_COMM_MAX, world, NULL),
                        TSR_OK);
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = -1e30f;
            for (int r = 0; r < np; r++) {
                float v = (float)((r * 7 + (int)i) % 11) - 5.0f;
                want = v > want ? v : want;
            }
            bad += a[i] != want;
        }
        CU_ASSERT_EQUAL(bad, 0);
        free(a);
        free(b);
    }
}

static void test_allreduce_bf16(void)
{
    size_t n = 333;
    uint16_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (size_t i = 0; i < n; i++)
        a[i] = tsr_float_to_bf16((float)(me + 1 + (int)(i % 5)));
    CU_ASSERT_EQUAL(tsr_comm_allreduce(a, b, n, TSR_COMM_BF16, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int want = 0;
        for (int r = 0; r < np; r++)
            want += r + 1 + (int)(i % 5);
        bad += tsr_bf16_to_float(b[i]) != (float)want;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (size_t i = 0; i < n; i++)
        a[i] = tsr_float_to_bf16(-(float)((me + (int)i) % np) * 0.5f);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(a, b, n, TSR_COMM_BF16, TSR_COMM_MAX, world, NULL),
                    TSR_OK);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += tsr_bf16_to_float(b[i]) != 0.0f; /* some rank holds -0.0 or 0 */
    CU_ASSERT_EQUAL(bad, 0);
    free(a);
    free(b);
}

static void test_allreduce_integers(void)
{
    int32_t i32[5], o32[5];
    int64_t i64[3], o64[3];
    for (int i = 0; i < 5; i++)
        i32[i] = (me + 1) * (i - 2);
    for (int i = 0; i < 3; i++)
        i64[i] = 1000000000000LL * (i + 1) + me;
    CU_ASSERT_EQUAL(tsr_comm_allreduce(i32, o32, 5, TSR_COMM_INT32, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(i64, o64, 3, TSR_COMM_INT64, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(o32[i], (i - 2) * np * (np + 1) / 2);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(o64[i], 1000000000000LL * (i + 1) * np + (int64_t)np * (np - 1) / 2);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(i64, o64, 3, TSR_COMM_INT64, TSR_COMM_MAX, world, NULL),
                    TSR_OK);
    CU_ASSERT_EQUAL(o64[2], 3000000000000LL + np - 1);
    double f64[2] = {0.5 * (me + 1), 1e-12 * me}, s64[2];
    CU_ASSERT_EQUAL(tsr_comm_allreduce(f64, s64, 2, TSR_COMM_FP64, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    CU_ASSERT_DOUBLE_EQUAL(s64[0], 0.25 * np * (np + 1), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s64[1], 1e-12 * np * (np - 1) / 2, 1e-24);
}

static void test_reduce_scatter(void)
{
    const size_t counts[] = {0, 1, 5, 333};
    for (size_t s = 0; s < 4; s++) {
        size_t rc = counts[s], total = rc * (size_t)np;
        int32_t *a = malloc((total + 1) * sizeof *a), *b = malloc((rc + 1) * sizeof *b);
        for (size_t j = 0; j < total; j++)
            a[j] = me + (int32_t)j;
        CU_ASSERT_EQUAL(
            tsr_comm_reduce_scatter(a, b, rc, TSR_COMM_INT32, TSR_COMM_SUM, world, NULL), TSR_OK);
        int bad = 0;
        for (size_t i = 0; i < rc; i++) {
            int32_t want = 0;
            for (int r = 0; r < np; r++)
                want += r + (int32_t)((size_t)me * rc + i);
            bad += b[i] != want;
        }
        CU_ASSERT_EQUAL(bad, 0);
        /* NCCL's in-place form: this rank's block of the input is the output */
        for (size_t j = 0; j < total; j++)
            a[j] = me + (int32_t)j;
        int32_t *mine = a + (size_t)me * rc;
        CU_ASSERT_EQUAL(
            tsr_comm_reduce_scatter(a, mine, rc, TSR_COMM_INT32, TSR_COMM_SUM, world, NULL),
            TSR_OK);
        bad = 0;
        for (size_t i = 0; i < rc; i++)
            bad += mine[i] != b[i];
        CU_ASSERT_EQUAL(bad, 0);
        free(a);
        free(b);
    }
}

static void test_allgather(void)
{
    const size_t counts[] = {0, 1, 7, 250};
    for (size_t s = 0; s < 4; s++) {
        size_t c = counts[s], total = c * (size_t)np;
        float *a = malloc((c + 1) * sizeof *a), *b = malloc((total + 1) * sizeof *b);
        for (size_t i = 0; i < c; i++)
            a[i] = (float)(me * 1000 + (int)i);
        CU_ASSERT_EQUAL(tsr_comm_allgather(a, b, c, TSR_COMM_FP32, world, NULL), TSR_OK);
        int bad = 0;
        for (int r = 0; r < np; r++)
            for (size_t i = 0; i < c; i++)
                bad += b[(size_t)r * c + i] != (float)(r * 1000 + (int)i);
        CU_ASSERT_EQUAL(bad, 0);
        /* in place: the input already sits in this rank's block */
        memset(b, 0, (total + 1) * sizeof *b);
        for (size_t i = 0; i < c; i++)
            b[(size_t)me * c + i] = (float)(me * 1000 + (int)i);
        CU_ASSERT_EQUAL(tsr_comm_allgather(b + (size_t)me * c, b, c, TSR_COMM_FP32, world, NULL),
                        TSR_OK);
        bad = 0;
        for (int r = 0; r < np; r++)
            for (size_t i = 0; i < c; i++)
                bad += b[(size_t)r * c + i] != (float)(r * 1000 + (int)i);
        CU_ASSERT_EQUAL(bad, 0);
        free(a);
        free(b);
    }
}

static void test_broadcast_from_every_root(void)
{
    for (int root = 0; root < np; root++) {
        for (size_t s = 0; s < NSIZES; s++) {
            size_t n = sizes[s];
            int64_t *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b);
            for (size_t i = 0; i < n; i++) {
                a[i] = me == root ? root * 100 + (int64_t)i : -1;
                b[i] = -2;
            }
            CU_ASSERT_EQUAL(tsr_comm_broadcast(a, b, n, TSR_COMM_INT64, root, world, NULL),
                            TSR_OK);
            int bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += b[i] != root * 100 + (int64_t)i;
            /* in place */
            CU_ASSERT_EQUAL(tsr_comm_broadcast(a, a, n, TSR_COMM_INT64, root, world, NULL),
                            TSR_OK);
            for (size_t i = 0; i < n; i++)
                bad += a[i] != root * 100 + (int64_t)i;
            CU_ASSERT_EQUAL(bad, 0);
            free(a);
            free(b);
        }
    }
}

/* Every root, 77 and 300007 elements (1.2 MB), out of place and in place
 * on the root: on up to 8 ranks reduce is mpi_reduce.c's binomial tree,
 * whose inner ranks fold their children's data in. */
static void test_reduce_from_every_root(void)
{
    const size_t counts[] = {77, 300007};
    for (size_t s = 0; s < 2; s++)
        for (int root = 0; root < np; root++)
            for (int in_place = 0; in_place < 2; in_place++) {
                size_t n = counts[s];
                float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
                for (size_t i = 0; i < n; i++) {
                    a[i] = fval(me, i);
                    b[i] = -1.0f;
                }
                float *out = in_place && me == root ? a : b;
                CU_ASSERT_EQUAL(tsr_comm_reduce(a, out, n, TSR_COMM_FP32, TSR_COMM_SUM, root,
                                                world, NULL),
                                TSR_OK);
                int bad = 0;
                for (size_t i = 0; i < n; i++) {
                    if (me == root)
                        bad += out[i] != fval_sum(i);
                    else
                        bad += b[i] != -1.0f || a[i] != fval(me, i);
                }
                CU_ASSERT_EQUAL(bad, 0);
                free(a);
                free(b);
            }
}

static void test_alltoall(void)
{
    const size_t counts[] = {0, 1, 3};
    for (size_t s = 0; s < 3; s++) {
        size_t c = counts[s], total = c * (size_t)np;
        int32_t *a = malloc((total + 1) * sizeof *a), *b = malloc((total + 1) * sizeof *b);
        for (int p = 0; p < np; p++)
            for (size_t i = 0; i < c; i++)
                a[(size_t)p * c + i] = me * 100 + p * 10 + (int32_t)i;
        CU_ASSERT_EQUAL(tsr_comm_alltoall(a, b, c, TSR_COMM_INT32, world, NULL), TSR_OK);
        int bad = 0;
        for (int p = 0; p < np; p++)
            for (size_t i = 0; i < c; i++)
                bad += b[(size_t)p * c + i] != p * 100 + me * 10 + (int32_t)i;
        CU_ASSERT_EQUAL(bad, 0);
        free(a);
        free(b);
    }
}

static void test_alltoallv_uneven_with_zeros(void)
{
    size_t sc[8], sd[8], rc[8], rd[8], st = 0, rt = 0;
    for (int p = 0; p < np; p++) {
        sc[p] = (size_t)((me + p) % 3); /* what I send to p */
        rc[p] = (size_t)((p + me) % 3); /* what p sends to me */
        sd[p] = st;
        rd[p] = rt + 1; /* a gap before each block: displacements are honoured */
        st += sc[p];
        rt += rc[p] + 1;
    }
    float *a = malloc((st + 1) * sizeof *a), *b = malloc((rt + 1) * sizeof *b);
    for (int p = 0; p < np; p++)
        for (size_t i = 0; i < sc[p]; i++)
            a[sd[p] + i] = (float)(me * 1000 + p * 10 + (int)i);
    for (size_t i = 0; i <= rt; i++)
        b[i] = -7.0f;
    CU_ASSERT_EQUAL(tsr_comm_alltoallv(a, sc, sd, b, rc, rd, TSR_COMM_FP32, world, NULL), TSR_OK);
    int bad = 0;
    for (int p = 0; p < np; p++) {
        bad += b[rd[p] - 1] != -7.0f;
        for (size_t i = 0; i < rc[p]; i++)
            bad += b[rd[p] + i] != (float)(p * 1000 + me * 10 + (int)i);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(a);
    free(b);
}

static void test_send_recv_pairs_and_batched_ring(void)
{
    /* pairs (0,1), (2,3), ...: even sends first, odd receives */
    float buf[9];
    int partner = me ^ 1;
    if (partner < np) {
        for (int i = 0; i < 9; i++)
            buf[i] = me % 2 == 0 ? (float)(me * 10 + i) : -1.0f;
        tsr_status st = me % 2 == 0
                            ? tsr_comm_send(buf, 9, TSR_COMM_FP32, partner, world, NULL)
                            : tsr_comm_recv(buf, 9, TSR_COMM_FP32, partner, world, NULL);
        CU_ASSERT_EQUAL(st, TSR_OK);
        int bad = 0;
        for (int i = 0; i < 9 && me % 2 == 1; i++)
            bad += buf[i] != (float)(partner * 10 + i);
        CU_ASSERT_EQUAL(bad, 0);
    }
    /* ring: everyone sends to next and receives from prev in one batch,
     * which would deadlock as blocking sends without the batch */
    int next = (me + 1) % np, prev = (me + np - 1) % np;
    int64_t out[1000], in[1000];
    for (int i = 0; i < 1000; i++) {
        out[i] = me * 100000 + i;
        in[i] = -1;
    }
    tsr_comm_p2p ops[2] = {{true, out, 1000, TSR_COMM_INT64, next},
                           {false, in, 1000, TSR_COMM_INT64, prev}};
    tsr_comm_request *req = NULL;
    CU_ASSERT_EQUAL(tsr_comm_batch_p2p(ops, 2, world, &req), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_wait(&req), TSR_OK);
    CU_ASSERT_PTR_NULL(req);
    int bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += in[i] != prev * 100000 + i;
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_overlapping_nonblocking(void)
{
    enum { N = 513 };
    float a[N], b[N];
    int32_t g_in[3], g_out[3 * 8];
    int64_t c[5];
    for (int i = 0; i < N; i++)
        a[i] = fval(me, (size_t)i);
    for (int i = 0; i < 3; i++)
        g_in[i] = me * 3 + i;
    for (int i = 0; i < 5; i++)
        c[i] = me == 0 ? 40 + i : 0;
    tsr_comm_request *r[4] = {NULL, NULL, NULL, NULL};
    CU_ASSERT_EQUAL(tsr_comm_allreduce(a, b, N, TSR_COMM_FP32, TSR_COMM_SUM, world, &r[0]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allgather(g_in, g_out, 3, TSR_COMM_INT32, world, &r[1]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_broadcast(c, c, 5, TSR_COMM_INT64, 0, world, &r[2]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_barrier(world, &r[3]), TSR_OK);
    for (int k = 0; k < 4; k++)
        CU_ASSERT_PTR_NOT_NULL(r[k]);
    /* complete out of order, one of them by polling */
    bool done = false;
    while (!done)
        CU_ASSERT_EQUAL_FATAL(tsr_comm_test(&r[2], &done), TSR_OK);
    CU_ASSERT_PTR_NULL(r[2]);
    CU_ASSERT_EQUAL(tsr_comm_wait(&r[1]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_wait_all(r, 4), TSR_OK);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        bad += b[i] != fval_sum((size_t)i);
    }
    for (int i = 0; i < 3 * np; i++)
        bad += g_out[i] != i;
    for (int i = 0; i < 5; i++)
        bad += c[i] != 40 + i;
    CU_ASSERT_EQUAL(bad, 0);
}

/* Groups of one and of two (split from the world): all-to-all(v) on a
 * group of one is the local copy alone; reduce on a pair takes its own
 * path (collectives/mpi.c), in place and not, fp32 and bf16, either root. */
static void test_alltoall_and_reduce_on_groups_of_one_and_two(void)
{
    tsr_comm *solo = NULL, *pair = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_split(world, me, 0, "solo", &solo), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_comm_split(world, me / 2, me, "pair", &pair), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_comm_size(solo), 1);
    /* with an odd np the last rank's "pair" is a group of one */
    CU_ASSERT_EQUAL_FATAL(tsr_comm_size(pair), me / 2 * 2 + 1 < np ? 2 : 1);

    int32_t in[5] = {1, 2, 3, 4, 5}, out[5] = {0};
    CU_ASSERT_EQUAL(tsr_comm_alltoall(in, out, 5, TSR_COMM_INT32, solo, NULL), TSR_OK);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    size_t sc[1] = {3}, sd[1] = {2}, rc[1] = {3}, rd[1] = {1};
    int32_t outv[5] = {0};
    CU_ASSERT_EQUAL(tsr_comm_alltoallv(in, sc, sd, outv, rc, rd, TSR_COMM_INT32, solo, NULL),
                    TSR_OK);
    CU_ASSERT_TRUE(outv[0] == 0 && outv[1] == 3 && outv[2] == 4 && outv[3] == 5 && outv[4] == 0);

    if (tsr_comm_size(pair) == 1) {
        tsr_comm_destroy(pair);
        tsr_comm_destroy(solo);
        return;
    }
    int pr = tsr_comm_rank(pair), world_peer = me ^ 1;
    const size_t n = 100003;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    uint16_t *h = malloc(n * sizeof *h);
    for (int root = 0; root < 2; root++) {
        for (size_t i = 0; i < n; i++) {
            a[i] = fval(me, i);
            b[i] = -1.0f;
            h[i] = tsr_float_to_bf16((float)((me + 1) * (int)(i % 7)));
        }
        CU_ASSERT_EQUAL(tsr_comm_reduce(a, b, n, TSR_COMM_FP32, TSR_COMM_SUM, root, pair, NULL),
                        TSR_OK);
        CU_ASSERT_EQUAL(tsr_comm_reduce(h, h, n, TSR_COMM_BF16, TSR_COMM_MAX, root, pair, NULL),
                        TSR_OK); /* in place on the root */
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = fval(me, i) + fval(world_peer, i);
            float hmax = (float)((me > world_peer ? me + 1 : world_peer + 1) * (int)(i % 7));
            if (pr == root)
                bad += b[i] != want || tsr_bf16_to_float(h[i]) != hmax;
            else
                bad += b[i] != -1.0f || tsr_bf16_to_float(h[i]) != (float)((me + 1) * (int)(i % 7));
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
    float z = 0.0f;
    CU_ASSERT_EQUAL(tsr_comm_reduce(&z, &z, 0, TSR_COMM_FP32, TSR_COMM_SUM, 1, pair, NULL), TSR_OK);
    free(a);
    free(b);
    free(h);
    tsr_comm_destroy(pair);
    tsr_comm_destroy(solo);
}

/* Two all-to-alls, a reduce and a ring of send/recv in flight together on
 * one communicator: each message must meet its own operation. */
static void test_alltoalls_and_p2p_in_flight_together(void)
{
    enum { C = 301 };
    size_t total = (size_t)C * (size_t)np;
    int32_t *s1 = malloc(total * sizeof *s1), *r1 = malloc(total * sizeof *r1);
    int32_t *s2 = malloc(total * sizeof *s2), *r2 = malloc(total * sizeof *r2);
    for (int p = 0; p < np; p++)
        for (int i = 0; i < C; i++) {
            s1[p * C + i] = me * 100000 + p * 1000 + i;
            s2[p * C + i] = -(me * 100000 + p * 1000 + i);
        }
    float ring_out[C], ring_in[C], red_in[C], red_out[C];
    for (int i = 0; i < C; i++) {
        ring_out[i] = (float)(me * 1000 + i);
        red_in[i] = fval(me, (size_t)i);
    }
    int next = (me + 1) % np, prev = (me + np - 1) % np;
    tsr_comm_p2p ring[2] = {{false, ring_in, C, TSR_COMM_FP32, prev},
                            {true, ring_out, C, TSR_COMM_FP32, next}};
    tsr_comm_request *r[4] = {NULL, NULL, NULL, NULL};
    CU_ASSERT_EQUAL(tsr_comm_batch_p2p(ring, 2, world, &r[0]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_alltoall(s1, r1, C, TSR_COMM_INT32, world, &r[1]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_reduce(red_in, red_out, C, TSR_COMM_FP32, TSR_COMM_SUM, 0, world,
                                    &r[2]),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_alltoall(s2, r2, C, TSR_COMM_INT32, world, &r[3]), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_wait(&r[3]), TSR_OK); /* the last one first */
    CU_ASSERT_EQUAL(tsr_comm_wait_all(r, 4), TSR_OK);
    int bad = 0;
    for (int p = 0; p < np; p++)
        for (int i = 0; i < C; i++) {
            bad += r1[p * C + i] != p * 100000 + me * 1000 + i;
            bad += r2[p * C + i] != -(p * 100000 + me * 1000 + i);
        }
    for (int i = 0; i < C; i++) {
        bad += ring_in[i] != (float)(prev * 1000 + i);
        bad += me == 0 && red_out[i] != fval_sum((size_t)i);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(s1);
    free(r1);
    free(s2);
    free(r2);
}

static void test_split_counters_and_names(void)
{
    tsr_comm *half = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_split(world, me % 2, -me, "half", &half), TSR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(half);
    int size = (np + 1 - me % 2) / 2;
    CU_ASSERT_EQUAL(tsr_comm_size(half), size);
    CU_ASSERT_STRING_EQUAL(tsr_comm_name(half), "half");
    /* key -me reverses the order: group rank 0 is the highest world rank */
    int top = me % 2 == 0 ? (np - 1) - ((np - 1) % 2) : np - 1 - (np % 2);
    CU_ASSERT_EQUAL(tsr_comm_world_rank_of(half, 0), top);
    CU_ASSERT_EQUAL(tsr_comm_world_rank_of(half, size), -1);
    int one = 1, n = 0;
    float f[10] = {0};
    float g[10 * 8];
    CU_ASSERT_EQUAL(tsr_comm_allreduce(&one, &n, 1, TSR_COMM_INT32, TSR_COMM_SUM, half, NULL),
                    TSR_OK);
    CU_ASSERT_EQUAL(n, size);
    CU_ASSERT_EQUAL(tsr_comm_allgather(f, g, 10, TSR_COMM_FP32, half, NULL), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_barrier(half, NULL), TSR_OK);
    tsr_comm_counters c;
    tsr_comm_counters_get(half, &c);
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_ALLREDUCE], 1);
    CU_ASSERT_EQUAL(c.bytes[TSR_COMM_KIND_ALLREDUCE], 4);
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_ALLGATHER], 1);
    CU_ASSERT_EQUAL(c.bytes[TSR_COMM_KIND_ALLGATHER], (uint64_t)(40 * size));
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_BARRIER], 1);
    CU_ASSERT_EQUAL(c.bytes[TSR_COMM_KIND_BARRIER], 0);
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_SEND], 0);
    tsr_comm_counters_reset(half);
    tsr_comm_counters_get(half, &c);
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_ALLREDUCE], 0);
    /* a rank that joins no group still takes part in the split */
    tsr_comm *only_zero = NULL;
    CU_ASSERT_EQUAL(tsr_comm_split(world, me == 0 ? 0 : TSR_COMM_NO_COLOR, 0, "zero", &only_zero),
                    TSR_OK);
    CU_ASSERT_EQUAL(only_zero != NULL, me == 0);
    tsr_comm_destroy(only_zero);
    tsr_comm_destroy(half);
}

static void test_batch_counts_sends_and_receives(void)
{
    tsr_comm *dup = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_split(world, 0, me, "dup", &dup), TSR_OK);
    int next = (me + 1) % np, prev = (me + np - 1) % np;
    int32_t out[6] = {1, 2, 3, 4, 5, 6}, in[6];
    /* two messages each way; matched in order, so the 4 lands before the 2 */
    tsr_comm_p2p all[4] = {{true, out, 4, TSR_COMM_INT32, next},
                           {true, out + 4, 2, TSR_COMM_INT32, next},
                           {false, in, 4, TSR_COMM_INT32, prev},
                           {false, in + 4, 2, TSR_COMM_INT32, prev}};
    CU_ASSERT_EQUAL(tsr_comm_batch_p2p(all, 4, dup, NULL), TSR_OK);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(in[i], i + 1);
    tsr_comm_counters c;
    tsr_comm_counters_get(dup, &c);
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_SEND], 2);
    CU_ASSERT_EQUAL(c.calls[TSR_COMM_KIND_RECV], 2);
    CU_ASSERT_EQUAL(c.bytes[TSR_COMM_KIND_SEND], 24);
    CU_ASSERT_EQUAL(c.bytes[TSR_COMM_KIND_RECV], 24);
    tsr_comm_request *req = (tsr_comm_request *)&c; /* must be cleared */
    CU_ASSERT_EQUAL(tsr_comm_batch_p2p(NULL, 0, dup, &req), TSR_OK);
    CU_ASSERT_PTR_NULL(req);
    tsr_comm_destroy(dup);
}

static void test_bad_arguments_fail_locally(void)
{
    float x = 0;
    CU_ASSERT_EQUAL(tsr_comm_broadcast(&x, &x, 1, TSR_COMM_FP32, np, world, NULL),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "root"));
    CU_ASSERT_EQUAL(tsr_comm_allreduce(NULL, &x, 1, TSR_COMM_FP32, TSR_COMM_SUM, world, NULL),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(&x, &x, 1, (tsr_comm_dtype)9, TSR_COMM_SUM, world, NULL),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_comm_send(&x, 1, TSR_COMM_FP32, -1, world, NULL), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_comm_alltoall(&x, &x, 1, TSR_COMM_FP32, world, NULL), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(&x, &x, (size_t)1 << 40, TSR_COMM_FP32, TSR_COMM_SUM,
                                       world, NULL),
                    TSR_ERR_INVALID_ARG);
    /* nothing was started: the group is still in step */
    CU_ASSERT_EQUAL(tsr_comm_barrier(world, NULL), TSR_OK);
}

static void test_create_world(void)
{
    tsr_comm_options opts = {TSR_BACKEND_MPI, 120.0, "world", NULL};
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_size(world), np);
    CU_ASSERT_EQUAL(tsr_comm_rank(world), me);
    CU_ASSERT_EQUAL(tsr_comm_backend_of(world), TSR_COMM_BACKEND_MPI);
    CU_ASSERT_EQUAL(tsr_comm_timeout_seconds(world), 120.0);
    CU_ASSERT_STRING_EQUAL(tsr_comm_name(world), "world");
}

static void test_destroy_world(void)
{
    tsr_comm_destroy(world);
    world = NULL;
}

/* The world is made by the first case and freed by the last, since the
 * harness initialises MPI itself. */
static const tsr_test_case cases[] = {
    TSR_TEST(test_create_world),
    TSR_TEST(test_allreduce_fp32_sum_and_max),
    TSR_TEST(test_allreduce_bf16),
    TSR_TEST(test_allreduce_integers),
    TSR_TEST(test_reduce_scatter),
    TSR_TEST(test_allgather),
    TSR_TEST(test_broadcast_from_every_root),
    TSR_TEST(test_reduce_from_every_root),
    TSR_TEST(test_alltoall),
    TSR_TEST(test_alltoallv_uneven_with_zeros),
    TSR_TEST(test_send_recv_pairs_and_batched_ring),
    TSR_TEST(test_overlapping_nonblocking),
    TSR_TEST(test_alltoall_and_reduce_on_groups_of_one_and_two),
    TSR_TEST(test_alltoalls_and_p2p_in_flight_together),
    TSR_TEST(test_split_counters_and_names),
    TSR_TEST(test_batch_counts_sends_and_receives),
    TSR_TEST(test_bad_arguments_fail_locally),
    TSR_TEST(test_destroy_world),
};

int main(int argc, char **argv)
{
    const tsr_test_suite suites[] = {TSR_SUITE("comm_mpi", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
