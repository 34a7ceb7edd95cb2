/*
 * test_lm_head_plan.c - the chunks of the fused LM head
 * (kernels/lm_head_steps.h) and their products' shapes on the GPU
 * (tsr_cuda_linear_head_shapes). A plain unit test: it runs in every
 * build, GPU or not.
 *
 * The GPT-2 shape worked out by hand (B 4, T 1024, vocabulary 50304 of
 * which 50257 real, a 256 MiB logits budget); one chunk when the budget
 * holds every row; chunks that divide the rows exactly; for hidden sizes
 * 1 to 40 and odd vocabulary slices, chunks that tile the rows in order
 * with every chunk's input rows and every scratch part on the products'
 * alignment; the first padded column of shards before, across and past
 * the end of the real vocabulary; every refusal.
 */
#include <string.h>

#include "harness.h"
#include "kernels/cuda/linear_cuda_plan.h"
#include "kernels/lm_head_steps.h"

static void test_gpt2_shape(void)
{
    tsr_head_shape shape = {4 * 1024, 768, 50304, 0, 50257};
    tsr_head_plan p;
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &shape, 256ll << 20), TSR_OK);
    /* 2^28 / (50304 * 4) = 1334 rows, down to a multiple of 8 */
    CU_ASSERT_EQUAL(p.chunk_rows, 1328);
    CU_ASSERT_EQUAL(p.chunks, 4);
    CU_ASSERT_EQUAL(p.last_rows, 112);
    CU_ASSERT_EQUAL(p.first_pad, 50257);
    CU_ASSERT_EQUAL(p.row_max_offset, 66803712);
    CU_ASSERT_EQUAL(p.pack_offset, 66805040);
    CU_ASSERT_EQUAL(p.scratch_bytes, 267230784);
    CU_ASSERT_TRUE(1328ll * 50304 * 4 <= 256ll << 20);
    tsr_cuda_linear_shape shapes[2];
    int64_t count = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_linear_head_shapes(&p, shapes, &count), TSR_OK);
    CU_ASSERT_EQUAL(count, 2);
    CU_ASSERT_EQUAL(shapes[0].n, 1328);
    CU_ASSERT_EQUAL(shapes[0].in_features, 768);
    CU_ASSERT_EQUAL(shapes[0].out_features, 50304);
    CU_ASSERT_EQUAL(shapes[1].n, 112);
    CU_ASSERT_EQUAL(shapes[1].out_features, 50304);
    CU_ASSERT_EQUAL(tsr_head_chunk_start(&p, 3), 3984);
    CU_ASSERT_EQUAL(tsr_head_chunk_rows(&p, 3), 112);
    CU_ASSERT_EQUAL(tsr_head_chunk_rows(&p, 2), 1328);
}

static void test_one_chunk_and_exact_chunks(void)
{
    tsr_head_shape shape = {37, 33, 1000, 0, 1000};
    tsr_head_plan p;
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &shape, 1ll << 30), TSR_OK);
    CU_ASSERT_EQUAL(p.chunk_rows, 37); /* not a multiple of 8: the only chunk */
    CU_ASSERT_EQUAL(p.chunks, 1);
    CU_ASSERT_EQUAL(p.last_rows, 37);
    CU_ASSERT_EQUAL(p.first_pad, 1000);
    CU_ASSERT_EQUAL(p.row_max_offset, 37000);
    CU_ASSERT_EQUAL(p.pack_offset, 37040);
    CU_ASSERT_EQUAL(p.scratch_bytes, (37040 + 76) * 4);
    tsr_cuda_linear_shape shapes[2];
    int64_t count = 0;
    CU_ASSERT_EQUAL(tsr_cuda_linear_head_shapes(&p, shapes, &count), TSR_OK);
    CU_ASSERT_EQUAL(count, 1);
    /* a budget of exactly every row's logits is one chunk too */
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &shape, 37 * 1000 * 4), TSR_OK);
    CU_ASSERT_EQUAL(p.chunks, 1);
    /* 64 rows, a budget of 32: two full chunks, one product shape */
    shape.n = 64;
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &shape, 32 * 1000 * 4 + 3999), TSR_OK);
    CU_ASSERT_EQUAL(p.chunk_rows, 32);
    CU_ASSERT_EQUAL(p.chunks, 2);
    CU_ASSERT_EQUAL(p.last_rows, 32);
    CU_ASSERT_EQUAL(tsr_cuda_linear_head_shapes(&p, shapes, &count), TSR_OK);
    CU_ASSERT_EQUAL(count, 1);
}

static void test_chunks_tile_rows_aligned(void)
{
    const int64_t vocab_slices[] = {1, 7, 333, 1001};
    const int64_t row_counts[] = {1, 9, 100, 257};
    for (int64_t hidden = 1; hidden <= 40; hidden++)
        for (int vi = 0; vi < 4; vi++)
            for (int ni = 0; ni < 4; ni++) {
                int64_t v = vocab_slices[vi], n = row_counts[ni];
                tsr_head_shape shape = {n, hidden, v, 5, 5 + v};
                tsr_head_plan p;
                /* room for 8 + hidden % 11 rows: a chunk of 8 or 16 rows */
                int64_t budget = (8 + hidden % 11) * v * 4;
                CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &shape, budget), TSR_OK);
                int64_t next = 0;
                for (int64_t c = 0; c < p.chunks; c++) {
                    int64_t r0 = tsr_head_chunk_start(&p, c);
                    int64_t rows = tsr_head_chunk_rows(&p, c);
                    CU_ASSERT_EQUAL(r0, next);
                    CU_ASSERT_TRUE(rows >= 1 && rows <= p.chunk_rows);
                    CU_ASSERT_EQUAL((r0 * hidden * 4) % TSR_CUDA_LINEAR_ALIGN, 0);
                    CU_ASSERT_TRUE(rows * v * 4 <= budget);
                    next = r0 + rows;
                }
                CU_ASSERT_EQUAL(next, n);
                CU_ASSERT_EQUAL((p.row_max_offset * 4) % TSR_CUDA_LINEAR_ALIGN, 0);
                CU_ASSERT_EQUAL((p.pack_offset * 4) % TSR_CUDA_LINEAR_ALIGN, 0);
                CU_ASSERT_TRUE(p.row_max_offset >= p.chunk_rows * v);
                CU_ASSERT_TRUE(p.pack_offset >= p.row_max_offset + p.chunk_rows);
                CU_ASSERT_TRUE(p.scratch_bytes >= (p.pack_offset + 2 * p.chunk_rows) * 4);
                CU_ASSERT_EQUAL(p.scratch_bytes % TSR_CUDA_LINEAR_ALIGN, 0);
                CU_ASSERT_EQUAL(p.first_pad, v);
            }
}

static void test_first_pad(void)
{
    tsr_head_plan p;
    /* vocabulary 1000 padded to 1024, in two shards of 512 */
    tsr_head_shape first = {8, 16, 512, 0, 1000}, second = {8, 16, 512, 512, 1000};
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &first, 1 << 20), TSR_OK);
    CU_ASSERT_EQUAL(p.first_pad, 512);
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &second, 1 << 20), TSR_OK);
    CU_ASSERT_EQUAL(p.first_pad, 488);
    /* a shard wholly of padding (a large tp over a small vocabulary) */
    tsr_head_shape past = {8, 16, 64, 1024, 1000};
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &past, 1 << 20), TSR_OK);
    CU_ASSERT_EQUAL(p.first_pad, 0);
}

static void test_refusals(void)
{
    tsr_head_plan p;
    const tsr_head_shape bad[] = {
        {0, 16, 64, 0, 64}, {8, 0, 64, 0, 64}, {8, 16, 0, 0, 64}, {8, 16, 64, 0, 0}};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(tsr_head_plan_make(&p, &bad[i], 1 << 20), TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "at least 1"));
    }
    tsr_head_shape negative = {8, 16, 64, -1, 64};
    CU_ASSERT_EQUAL(tsr_head_plan_make(&p, &negative, 1 << 20), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "negative"));
    /* 7 rows of 100 fit but 100 rows are asked for */
    tsr_head_shape rows = {100, 16, 64, 0, 64};
    CU_ASSERT_EQUAL(tsr_head_plan_make(&p, &rows, 7 * 64 * 4), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "at least 8 (2048 bytes)"));
    CU_ASSERT_EQUAL(tsr_head_plan_make(&p, &rows, 0), TSR_ERR_INVALID_ARG);
    /* but 7 rows in all take 7 rows' budget */
    rows.n = 7;
    CU_ASSERT_EQUAL(tsr_head_plan_make(&p, &rows, 7 * 64 * 4), TSR_OK);
    CU_ASSERT_EQUAL(p.chunks, 1);
    /* the plan takes it; cuBLASLt's dimensions end below 2^31 */
    tsr_head_shape wide = {8, 16, 1ll << 31, 0, 1ll << 31};
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&p, &wide, 1ll << 40), TSR_OK);
    tsr_cuda_linear_shape shapes[2];
    int64_t count = 0;
    CU_ASSERT_EQUAL(tsr_cuda_linear_head_shapes(&p, shapes, &count), TSR_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(tsr_head_plan_make(NULL, &rows, 1 << 20), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_head_plan_make(&p, NULL, 1 << 20), TSR_ERR_INVALID_ARG);
}


static const tsr_test_case cases[] = {
    TSR_TEST(test_gpt2_shape),
    TSR_TEST(test_one_chunk_and_exact_chunks),
    TSR_TEST(test_chunks_tile_rows_aligned),
    TSR_TEST(test_first_pad),
    TSR_TEST(test_refusals),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("lm_head_plan", cases)};
    return tsr_test_main(suites, 1);
}
