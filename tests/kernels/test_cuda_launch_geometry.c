/*
 * test_cuda_launch_geometry.c - the host-side decisions of the CUDA
 * element-wise kernels (runtime/kernels/cuda/launch_geometry.h), in every
 * build: threads, blocks and shared memory for rows, elements, column sums
 * and the embedding scatter, the sum of squares' plan, AdamW's factors and
 * RoPE's frequencies. Expected values are worked out by hand from the
 * rules in the header, for an H100's limits and for a small made-up
 * device whose limits bind; errors for empty, negative and overflowing
 * sizes and for impossible limits.
 */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "kernels/cuda/launch_geometry.h"

/* what an H100 SXM reports */
static const tsr_cuda_limits h100 = {132, 1024, 2048, 32, 2147483647, 49152};
/* 128 threads per block, 2 blocks of 128 per SM, a grid of 3 blocks, 1 KiB */
static const tsr_cuda_limits small = {2, 128, 256, 32, 3, 1024};

static void expect_launch(const tsr_cuda_launch *g, int64_t blocks, int64_t threads,
                          int64_t shared, int64_t split)
{
    CU_ASSERT_EQUAL(g->blocks, blocks);
    CU_ASSERT_EQUAL(g->threads, threads);
    CU_ASSERT_EQUAL(g->shared_bytes, shared);
    CU_ASSERT_EQUAL(g->split, split);
}

/* the error names the kernel and leaves an all-zero launch */
static void expect_refused(tsr_status st, tsr_status want, const tsr_cuda_launch *g)
{
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "k_test"));
    CU_ASSERT_EQUAL(g->blocks, 0);
    CU_ASSERT_EQUAL(g->threads, 0);
}

static void test_rows(void)
{
    tsr_cuda_launch g;
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&h100, 1, 1, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 1, 32, 8, 1); /* one warp, one partial */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&h100, 129, 769, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 129, 512, 16 * 8, 1); /* capped at 512 threads = 16 warps */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&h100, 1000, 33, 4, "k_test", &g), TSR_OK);
    expect_launch(&g, 1000, 64, 2 * 4, 1); /* 33 columns: 2 warps; 4224 resident */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&h100, 1000000, 1000, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 528, 512, 128, 1); /* 132 SMs x 4 blocks of 512 */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&h100, 7, 480, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 7, 480, 15 * 8, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&h100, 7, 513, 0, "k_test", &g), TSR_OK);
    expect_launch(&g, 7, 512, 0, 1);
    /* the small device: 128 threads, 2 SMs x 2 blocks, but a grid of 3 */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&small, 100, 1000, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 3, 128, 4 * 8, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&small, 5, 1000, 256, "k_test", &g), TSR_OK);
    expect_launch(&g, 3, 128, 1024, 1); /* exactly the device's shared memory */
}

static void test_rows_refused(void)
{
    tsr_cuda_launch g;
    expect_refused(tsr_cuda_geometry_rows(&h100, 0, 10, 8, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    expect_refused(tsr_cuda_geometry_rows(&h100, 10, 0, 8, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    expect_refused(tsr_cuda_geometry_rows(&h100, -1, 10, 8, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    expect_refused(tsr_cuda_geometry_rows(&h100, 10, -5, 8, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    expect_refused(tsr_cuda_geometry_rows(&h100, INT64_C(1) << 40, INT64_C(1) << 30, 8,
                                          "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g); /* 2^70 elements */
    expect_refused(tsr_cuda_geometry_rows(&h100, 10, 10, -1, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    /* 4 warps x 257 bytes = 1028 > 1024 */
    expect_refused(tsr_cuda_geometry_rows(&small, 5, 1000, 257, "k_test", &g),
                   TSR_ERR_UNSUPPORTED, &g);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "1028"));
}

static void test_limits_refused(void)
{
    tsr_cuda_launch g;
    expect_refused(tsr_cuda_geometry_elements(NULL, 10, "k_test", &g), TSR_ERR_INVALID_ARG, &g);
    tsr_cuda_limits bad = h100;
    bad.warp_size = 64;
    expect_refused(tsr_cuda_geometry_elements(&bad, 10, "k_test", &g), TSR_ERR_UNSUPPORTED, &g);
    bad = h100;
    bad.sm_count = 0;
    expect_refused(tsr_cuda_geometry_elements(&bad, 10, "k_test", &g), TSR_ERR_INVALID_ARG, &g);
    bad = h100;
    bad.max_threads_per_block = 16; /* less than a warp */
    expect_refused(tsr_cuda_geometry_rows(&bad, 10, 10, 8, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    bad = h100;
    bad.max_grid_x = 0;
    expect_refused(tsr_cuda_geometry_columns(&bad, 10, 10, 1, "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g);
    bad = h100;
    bad.max_shared_per_block = -1;
    expect_refused(tsr_cuda_geometry_scatter(&bad, 10, 10, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    CU_ASSERT_EQUAL(tsr_cuda_limits_check(&h100, "k_test"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_cuda_limits_check(&small, "k_test"), TSR_OK);
}

/* a block limit that is not a whole number of warps is rounded down to one;
 * an SM smaller than a block */
static void test_odd_block_limit(void)
{
    const tsr_cuda_limits odd = {4, 100, 400, 32, 1000, 4096};
    tsr_cuda_launch g;
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&odd, 10, 1000, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 10, 96, 3 * 8, 1); /* 4 SMs x 4 blocks of 96 resident */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&odd, 1000, "k_test", &g), TSR_OK);
    expect_launch(&g, 11, 96, 0, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_columns(&odd, 10, 100, 1, "k_test", &g), TSR_OK);
    expect_launch(&g, 4, 96, 96 * 4, 3);
    /* an SM that holds fewer threads than a block still runs one block */
    const tsr_cuda_limits narrow_sm = {3, 128, 64, 32, 1000, 4096};
    CU_ASSERT_EQUAL(tsr_cuda_geometry_rows(&narrow_sm, 10, 1000, 8, "k_test", &g), TSR_OK);
    expect_launch(&g, 3, 128, 4 * 8, 1);
}

static void test_elements(void)
{
    tsr_cuda_launch g;
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&h100, 1, "k_test", &g), TSR_OK);
    expect_launch(&g, 1, 256, 0, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&h100, 256, "k_test", &g), TSR_OK);
    expect_launch(&g, 1, 256, 0, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&h100, 257, "k_test", &g), TSR_OK);
    expect_launch(&g, 2, 256, 0, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&h100, 1000, "k_test", &g), TSR_OK);
    expect_launch(&g, 4, 256, 0, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&h100, 1000000, "k_test", &g), TSR_OK);
    expect_launch(&g, 1056, 256, 0, 1); /* 132 SMs x 8 blocks of 256, then grid-stride */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&h100, INT64_MAX, "k_test", &g), TSR_OK);
    expect_launch(&g, 1056, 256, 0, 1);
    CU_ASSERT_EQUAL(tsr_cuda_geometry_elements(&small, 1000, "k_test", &g), TSR_OK);
    expect_launch(&g, 3, 128, 0, 1);
    expect_refused(tsr_cuda_geometry_elements(&h100, 0, "k_test", &g), TSR_ERR_INVALID_ARG, &g);
    expect_refused(tsr_cuda_geometry_elements(&h100, -7, "k_test", &g), TSR_ERR_INVALID_ARG, &g);
}

static void test_columns(void)
{
    tsr_cuda_launch g;
    CU_ASSERT_EQUAL(tsr_cuda_geometry_columns(&h100, 129, 769, 2, "k_test", &g), TSR_OK);
    expect_launch(&g, 25, 256, 256 * 2 * 4, 8); /* 25 strips of 32 columns, 8 groups */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_columns(&h100, 1, 1, 1, "k_test", &g), TSR_OK);
    expect_launch(&g, 1, 32, 32 * 4, 1);
    /* 3 rows: 3 groups of 96 threads; 21 blocks per SM x 132 = 2772 < 3125 strips */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_columns(&h100, 3, 100000, 1, "k_test", &g), TSR_OK);
    expect_launch(&g, 2772, 96, 96 * 4, 3);
    /* the small device holds 4 warps a block and a grid of 3 */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_columns(&small, 10, 1000, 2, "k_test", &g), TSR_OK);
    expect_launch(&g, 3, 128, 1024, 4);
    expect_refused(tsr_cuda_geometry_columns(&small, 10, 1000, 3, "k_test", &g),
                   TSR_ERR_UNSUPPORTED, &g); /* 1536 bytes */
    expect_refused(tsr_cuda_geometry_columns(&h100, 10, 10, 0, "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g);
    expect_refused(tsr_cuda_geometry_columns(&h100, 10, 10, 17, "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g);
    expect_refused(tsr_cuda_geometry_columns(&h100, 0, 10, 1, "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g);
    expect_refused(tsr_cuda_geometry_columns(&h100, INT64_MAX, 2, 1, "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g);
}

static void test_scatter(void)
{
    tsr_cuda_launch g;
    /* 270336 device threads / 769 columns -> 352 wanted, 50 rows: 50 slots of 1 */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_scatter(&h100, 769, 50, "k_test", &g), TSR_OK);
    expect_launch(&g, 151, 256, 0, 1); /* 38450 threads */
    CU_ASSERT_EQUAL(tsr_cuda_scatter_slots(&g, 50), 50);
    /* 100 rows, 64 slots wanted: 2 rows a slot, so 50 slots */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_scatter(&h100, 769, 100, "k_test", &g), TSR_OK);
    expect_launch(&g, 151, 256, 0, 2);
    CU_ASSERT_EQUAL(tsr_cuda_scatter_slots(&g, 100), 50);
    /* 66 wanted, capped at 64: 782 rows a slot (the last 734), 262144 threads */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_scatter(&h100, 4096, 50000, "k_test", &g), TSR_OK);
    expect_launch(&g, 1024, 256, 0, 782);
    CU_ASSERT_EQUAL(tsr_cuda_scatter_slots(&g, 50000), 64);
    /* 3 wanted: 3 rows a slot over 7 rows; 300000 threads, grid-stride */
    CU_ASSERT_EQUAL(tsr_cuda_geometry_scatter(&h100, 100000, 7, "k_test", &g), TSR_OK);
    expect_launch(&g, 1056, 256, 0, 3);
    CU_ASSERT_EQUAL(tsr_cuda_scatter_slots(&g, 7), 3);
    expect_refused(tsr_cuda_geometry_scatter(&h100, 0, 7, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    expect_refused(tsr_cuda_geometry_scatter(&h100, 7, 0, "k_test", &g), TSR_ERR_INVALID_ARG,
                   &g);
    expect_refused(tsr_cuda_geometry_scatter(&h100, INT64_C(1) << 30, INT64_C(1) << 40,
                                             "k_test", &g),
                   TSR_ERR_INVALID_ARG, &g);
}

static void expect_plan(int64_t n, int64_t partials, int64_t chunk)
{
    tsr_cuda_sumsq_plan p;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_sumsq_plan_make(n, "k_test", &p), TSR_OK);
    CU_ASSERT_EQUAL(p.partials, partials);
    CU_ASSERT_EQUAL(p.chunk, chunk);
    CU_ASSERT_EQUAL(p.threads, 256);
    CU_ASSERT_EQUAL(p.shared_bytes, 8 * 8); /* 8 warps x one double */
    CU_ASSERT_EQUAL(p.workspace_bytes, partials * 8);
}

static void test_sumsq_plan(void)
{
    expect_plan(1, 1, 1);
    expect_plan(2048, 1, 2048); /* 256 threads x 8 items before a second partial */
    expect_plan(2049, 2, 1025);
    expect_plan(1000000, 489, 2045);
    expect_plan(2097152, 1024, 2048);
    expect_plan(2097153, 1024, 2049);
    expect_plan(1000000000, 1024, 976563);
    tsr_cuda_sumsq_plan p;
    CU_ASSERT_EQUAL(tsr_cuda_sumsq_plan_make(0, "k_test", &p), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "k_test"));
    CU_ASSERT_EQUAL(p.workspace_bytes, 0);
    CU_ASSERT_EQUAL(tsr_cuda_sumsq_plan_make(-3, "k_test", &p), TSR_ERR_INVALID_ARG);
}

/* every block of pass 1 has at least one element and together they cover n */
static void test_sumsq_plan_covers(void)
{
    int bad = 0;
    for (int64_t n = 1; n < 3000000; n += n / 7 + 1) {
        tsr_cuda_sumsq_plan p;
        if (tsr_cuda_sumsq_plan_make(n, "k_test", &p) != TSR_OK || p.partials < 1 ||
            p.partials > TSR_CUDA_SUMSQ_PARTIALS_MAX || (p.partials - 1) * p.chunk >= n ||
            p.partials * p.chunk < n)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_adamw_factors(void)
{
    tsr_cuda_adamw_factors f;
    /* step 2 with exactly representable hyperparameters */
    tsr_cuda_adamw_factors_make(&f, 0.25f, 0.5f, 0.75f, 1e-8f, 0.5f, 2, 0.125f);
    CU_ASSERT_EQUAL(f.decay, 0.875f);          /* 1 - 0.25 * 0.5 */
    CU_ASSERT_EQUAL(f.one_minus_beta1, 0.5f);
    CU_ASSERT_EQUAL(f.one_minus_beta2, 0.25f);
    CU_ASSERT_EQUAL(f.step_size, 0x1.555556p-2f); /* 0.25 / (1 - 0.25): 1/3 rounded */
    CU_ASSERT_EQUAL(f.bc2_sqrt, 0.66143782776614765f); /* sqrt(1 - 0.5625) = sqrt(7) / 4 */
    CU_ASSERT_EQUAL(f.beta1, 0.5f);
    CU_ASSERT_EQUAL(f.beta2, 0.75f);
    CU_ASSERT_EQUAL(f.eps, 1e-8f);
    CU_ASSERT_EQUAL(f.grad_scale, 0.125f);
    /* step 0 counts as step 1, as in tsr_adamw_update */
    tsr_cuda_adamw_factors_make(&f, 0.25f, 0.5f, 0.75f, 1e-8f, 0.0f, 0, 1.0f);
    CU_ASSERT_EQUAL(f.decay, 1.0f);
    CU_ASSERT_EQUAL(f.step_size, 0.5f); /* 0.25 / (1 - 0.5) */
    CU_ASSERT_EQUAL(f.bc2_sqrt, 0.5f);  /* sqrt(1 - 0.75) */
}

static void test_rope_frequencies(void)
{
    float f[TSR_CUDA_ROPE_HALF_MAX + 1];
    /* base^(-2i/d) at exponents 0, 1/4, 1/2, 3/4 of 10^4: exact powers of ten */
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, 8, 10000.0f, "k_test"), TSR_OK);
    CU_ASSERT_EQUAL(f[0], 1.0f);
    CU_ASSERT_EQUAL(f[1], 0.1f);
    CU_ASSERT_EQUAL(f[2], 0.01f);
    CU_ASSERT_EQUAL(f[3], 0.001f);
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, 2, 500000.0f, "k_test"), TSR_OK);
    CU_ASSERT_EQUAL(f[0], 1.0f);
    f[TSR_CUDA_ROPE_HALF_MAX] = -1.0f; /* the largest d writes d/2 entries, no more */
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, 2 * TSR_CUDA_ROPE_HALF_MAX, 10000.0f, "k_test"),
                    TSR_OK);
    CU_ASSERT_EQUAL(f[TSR_CUDA_ROPE_HALF_MAX], -1.0f);
    CU_ASSERT_TRUE(f[TSR_CUDA_ROPE_HALF_MAX - 1] > 1e-4f && f[TSR_CUDA_ROPE_HALF_MAX - 1] < 1e-3f);
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, 3, 10000.0f, "k_test"), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "k_test"));
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, 0, 10000.0f, "k_test"), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, -2, 10000.0f, "k_test"), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_rope_frequencies(f, 2 * TSR_CUDA_ROPE_HALF_MAX + 2, 10000.0f,
                                              "k_test"),
                    TSR_ERR_UNSUPPORTED);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_rows),          TSR_TEST(test_rows_refused),      TSR_TEST(test_limits_refused),
    TSR_TEST(test_elements),      TSR_TEST(test_columns),           TSR_TEST(test_scatter),
    TSR_TEST(test_sumsq_plan),    TSR_TEST(test_sumsq_plan_covers), TSR_TEST(test_adamw_factors),
    TSR_TEST(test_rope_frequencies), TSR_TEST(test_odd_block_limit),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("cuda_launch_geometry", cases)};
    return tsr_test_main(suites, 1);
}
