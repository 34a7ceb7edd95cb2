/*
 * test_comm_gpu.c - the collectives on device memory: the NCCL backend
 * (when every rank has a GPU of its own) or the MPI backend staging device
 * buffers through pinned host memory (when ranks share a GPU). Which one
 * runs is decided the way a training run decides it. Exits 77 (skipped)
 * on a machine without a GPU. scripts/gpu-check.sh runs it.
 */
#include <cuda_runtime.h>
#include <mpi.h>
#include <stdlib.h>

#include "collectives/comm.h"
#include "harness.h"

static tsr_comm *world;
static int me, np;

static void *dev_from(const void *host, size_t bytes)
{
    void *d = NULL;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&d, bytes > 0 ? bytes : 1), cudaSuccess);
    if (bytes > 0)
        cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice);
    return d;
}

static void to_host(void *host, const void *dev, size_t bytes)
{
    CU_ASSERT_EQUAL(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}

static void test_create_world(void)
{
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int local = 0, gpus = 0;
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    cudaGetDeviceCount(&gpus);
    cudaSetDevice(local % gpus);
    tsr_comm_options opts = {TSR_BACKEND_AUTO, 120.0, "world", NULL};
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK);
    if (me == 0)
        printf("\nbackend: %s\n", tsr_comm_backend_name(tsr_comm_backend_of(world)));
}

static void test_allreduce_fp32_and_bf16(void)
{
    enum { N = 1001 };
    float h[N], out[N];
    uint16_t hb[N], ob[N];
    for (int i = 0; i < N; i++) {
        h[i] = (float)((me + 1) * (i % 7 + 1));
        hb[i] = tsr_float_to_bf16((float)(me + 1 + i % 3));
    }
    float *d = dev_from(h, sizeof h);
    uint16_t *db = dev_from(hb, sizeof hb);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(d, d, N, TSR_COMM_FP32, TSR_COMM_SUM, world, NULL), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_allreduce(db, db, N, TSR_COMM_BF16, TSR_COMM_SUM, world, NULL),
                    TSR_OK);
    to_host(out, d, sizeof out);
    to_host(ob, db, sizeof ob);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        bad += out[i] != (float)((i % 7 + 1) * np * (np + 1) / 2);
        bad += tsr_bf16_to_float(ob[i]) != (float)(np * (np + 1) / 2 + np * (i % 3));
    }
    CU_ASSERT_EQUAL(bad, 0);
    cudaFree(d);
    cudaFree(db);
}

static void test_gather_scatter_broadcast_alltoall(void)
{
    enum { C = 5 };
    int32_t in[C * 8], out[C * 8];
    for (int i = 0; i < C * np; i++)
        in[i] = me * 100 + i;
    int32_t *din = dev_from(in, sizeof in), *dout = dev_from(in, sizeof out);
    /* all-gather: block r is rank r's first C elements */
    CU_ASSERT_EQUAL(tsr_comm_allgather(din, dout, C, TSR_COMM_INT32, world, NULL), TSR_OK);
    to_host(out, dout, sizeof(int32_t) * C * (size_t)np);
    int bad = 0;
    for (int r = 0; r < np; r++)
        for (int i = 0; i < C; i++)
            bad += out[r * C + i] != r * 100 + i;
    /* reduce-scatter: block me summed over ranks */
    CU_ASSERT_EQUAL(
        tsr_comm_reduce_scatter(din, dout, C, TSR_COMM_INT32, TSR_COMM_SUM, world, NULL), TSR_OK);
    to_host(out, dout, sizeof(int32_t) * C);
    for (int i = 0; i < C; i++)
        bad += out[i] != 100 * np * (np - 1) / 2 + np * (me * C + i);
    /* all-to-all: block p goes to rank p */
    CU_ASSERT_EQUAL(tsr_comm_alltoall(din, dout, C, TSR_COMM_INT32, world, NULL), TSR_OK);
    to_host(out, dout, sizeof(int32_t) * C * (size_t)np);
    for (int p = 0; p < np; p++)
        for (int i = 0; i < C; i++)
            bad += out[p * C + i] != p * 100 + me * C + i;
    /* broadcast from the last rank */
    CU_ASSERT_EQUAL(tsr_comm_broadcast(din, dout, C, TSR_COMM_INT32, np - 1, world, NULL), TSR_OK);
    to_host(out, dout, sizeof(int32_t) * C);
    for (int i = 0; i < C; i++)
        bad += out[i] != (np - 1) * 100 + i;
    CU_ASSERT_EQUAL(bad, 0);
    cudaFree(din);
    cudaFree(dout);
}

static void test_ring_and_split(void)
{
    int64_t h[64], got[64];
    for (int i = 0; i < 64; i++)
        h[i] = me * 1000 + i;
    int64_t *ds = dev_from(h, sizeof h), *dr = dev_from(h, sizeof h);
    tsr_comm_p2p ops[2] = {{true, ds, 64, TSR_COMM_INT64, (me + 1) % np},
                           {false, dr, 64, TSR_COMM_INT64, (me + np - 1) % np}};
    tsr_comm_request *req = NULL;
    CU_ASSERT_EQUAL(tsr_comm_batch_p2p(ops, 2, world, &req), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_wait(&req), TSR_OK);
    to_host(got, dr, sizeof got);
    int prev = (me + np - 1) % np, bad = 0;
    for (int i = 0; i < 64; i++)
        bad += got[i] != prev * 1000 + i;
    CU_ASSERT_EQUAL(bad, 0);
    tsr_comm *half = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_split(world, me % 2, me, "half", &half), TSR_OK);
    CU_ASSERT_EQUAL(tsr_comm_barrier(half, NULL), TSR_OK);
    tsr_comm_destroy(half);
    cudaFree(ds);
    cudaFree(dr);
}

static void test_destroy_world(void)
{
    tsr_comm_destroy(world);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_create_world),
    TSR_TEST(test_allreduce_fp32_and_bf16),
    TSR_TEST(test_gather_scatter_broadcast_alltoall),
    TSR_TEST(test_ring_and_split),
    TSR_TEST(test_destroy_world),
};

int main(int argc, char **argv)
{
    int gpus = 0;
    if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus == 0) {
        printf("skipped: no GPU\n");
        return 77;
    }
    const tsr_test_suite suites[] = {TSR_SUITE("comm_gpu", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
