/*
 * test_cuda_attention_plan.c - the host-side plans of the CUDA attention
 * (kernels/cuda/attention_cuda_plan.h) and of the cuBLASLt linear
 * products (kernels/cuda/linear_cuda_plan.h). Plain unit tests: they run
 * in every build, GPU or not.
 *
 * Attention: tiles, shared memory, grids and workspace worked out by hand
 * for H100, A100, 99 KiB and 48 KiB devices; every refusal; the causal
 * block ranges the kernels loop over checked against a brute-force walk
 * over every (query, key) pair. Linear: the GEMM maps field by field, and
 * executed by a naive column-major GEMM on the row-major buffers they
 * name, which must give exactly the row-major products (integer data, so
 * every sum is exact); buffer sizes, column-sum chunks, refusals.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/cuda/attention_cuda_plan.h"
#include "kernels/cuda/linear_cuda_plan.h"

static const tsr_cuda_attention_limits h100 = {232448, 1024};
static const tsr_cuda_attention_limits a100 = {166912, 1024};
static const tsr_cuda_attention_limits ada = {101376, 1024};
static const tsr_cuda_attention_limits small = {49152, 1024};

static void assert_launch(const tsr_cuda_attention_launch *l, int64_t br, int64_t bc,
                          int64_t gx, int64_t gy, int64_t gz, int64_t smem)
{
    CU_ASSERT_EQUAL(l->br, br);
    CU_ASSERT_EQUAL(l->bc, bc);
    CU_ASSERT_EQUAL(l->grid[0], gx);
    CU_ASSERT_EQUAL(l->grid[1], gy);
    CU_ASSERT_EQUAL(l->grid[2], gz);
    CU_ASSERT_EQUAL(l->threads, 256);
    CU_ASSERT_EQUAL(l->smem_bytes, smem);
}

static void test_attention_smem_bytes(void)
{
    /* forward (Br + 2 Bc)(D + 1) + Br (Bc + 16) floats; backward
     * (2 Br + 2 Bc)(D + 1) + Br (Bc + 16) + 2 Br */
    CU_ASSERT_EQUAL(tsr_cuda_attention_smem_bytes(TSR_CUDA_ATTN_FORWARD, 64, 64, 128), 119552);
    CU_ASSERT_EQUAL(tsr_cuda_attention_smem_bytes(TSR_CUDA_ATTN_BACKWARD, 64, 64, 128), 153088);
    CU_ASSERT_EQUAL(tsr_cuda_attention_smem_bytes(TSR_CUDA_ATTN_FORWARD, 32, 32, 32), 18816);
    CU_ASSERT_EQUAL(tsr_cuda_attention_smem_bytes(TSR_CUDA_ATTN_BACKWARD, 32, 32, 32), 23296);
    CU_ASSERT_TRUE(tsr_cuda_attention_d_supported(32) && tsr_cuda_attention_d_supported(64) &&
                   tsr_cuda_attention_d_supported(128));
    CU_ASSERT_FALSE(tsr_cuda_attention_d_supported(16) || tsr_cuda_attention_d_supported(96) ||
                    tsr_cuda_attention_d_supported(256) || tsr_cuda_attention_d_supported(0));
}

static void test_attention_plan_h100_and_a100(void)
{
    tsr_cuda_attention_plan p;
    for (int dev = 0; dev < 2; dev++) {
        CU_ASSERT_EQUAL_FATAL(
            tsr_cuda_attention_plan_init(&p, 2, 257, 4, 2, 128, dev ? &a100 : &h100), TSR_OK);
        /* 257 rows: 5 blocks of 64, the last holding one row */
        assert_launch(&p.forward, 64, 64, 5, 4, 2, 119552);
        assert_launch(&p.dkv, 64, 64, 5, 2, 2, 153088);
        assert_launch(&p.dq, 64, 64, 5, 4, 2, 153088);
        /* Di: 2 * 257 * 4 = 2056 rows, 8 per block */
        assert_launch(&p.rowdot, 0, 0, 257, 1, 1, 0);
        CU_ASSERT_EQUAL(p.workspace_bytes, 2 * 4 * 257 * 4);
        CU_ASSERT_TRUE(fabsf(p.scale - 0.08838834764f) < 1e-8f);
        CU_ASSERT_TRUE(p.b == 2 && p.t == 257 && p.hq == 4 && p.hkv == 2 && p.d == 128);
    }
}

static void test_attention_plan_smaller_devices(void)
{
    tsr_cuda_attention_plan p;
    /* 99 KiB, D 128: forward 64x32 (78336 B); backward 64x64 needs
     * 153088 and 64x32 111872, so 32x32 (72448) */
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_attention_plan_init(&p, 2, 257, 4, 2, 128, &ada), TSR_OK);
    assert_launch(&p.forward, 64, 32, 5, 4, 2, 78336);
    assert_launch(&p.dkv, 32, 32, 9, 2, 2, 72448);
    assert_launch(&p.dq, 32, 32, 9, 4, 2, 72448);
    /* 48 KiB, D 64: forward 64x32 (45568), backward 32x32 (39680) */
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_attention_plan_init(&p, 1, 77, 2, 2, 64, &small), TSR_OK);
    assert_launch(&p.forward, 64, 32, 2, 2, 1, 45568);
    assert_launch(&p.dkv, 32, 32, 3, 2, 1, 39680);
    assert_launch(&p.dq, 32, 32, 3, 2, 1, 39680);
    assert_launch(&p.rowdot, 0, 0, 20, 1, 1, 0); /* 154 rows */
    /* one token, one head */
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_attention_plan_init(&p, 1, 1, 1, 1, 32, &h100), TSR_OK);
    assert_launch(&p.forward, 64, 64, 1, 1, 1, 4 * (192 * 33 + 64 * 80));
    assert_launch(&p.dkv, 64, 64, 1, 1, 1, 4 * (256 * 33 + 64 * 80 + 128));
    assert_launch(&p.rowdot, 0, 0, 1, 1, 1, 0);
    CU_ASSERT_EQUAL(p.workspace_bytes, 4);
}

static int error_mentions(const char *a, const char *b)
{
    const char *msg = tsr_last_error();
    return strstr(msg, a) != NULL && (b == NULL || strstr(msg, b) != NULL);
}

static void test_attention_plan_refusals(void)
{
    tsr_cuda_attention_plan p;
    /* D 128 at 48 KiB: even 32x32 needs 55680 bytes for the forward */
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 1, 1, 128, &small),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_TRUE(error_mentions("55680", "49152"));
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 1, 1, 80, &h100), TSR_ERR_UNSUPPORTED);
    CU_ASSERT_TRUE(error_mentions("head dimension 80", "32, 64 and 128"));
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 6, 4, 64, &h100),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_TRUE(error_mentions("6 query heads", "4 key/value heads"));
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 0, 64, 1, 1, 64, &h100),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, -3, 1, 1, 64, &h100),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 1, 0, 64, &h100),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 1, 1, 64, NULL), TSR_ERR_INVALID_ARG);
    const tsr_cuda_attention_limits few_threads = {232448, 128};
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 1, 1, 64, &few_threads),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_TRUE(error_mentions("128 threads", "256"));
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 64, 65536, 1, 64, &h100),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 65536, 64, 1, 1, 64, &h100),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, (1LL << 30) + 1, 1, 1, 64, &h100),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(tsr_cuda_attention_plan_init(&p, 1, 1LL << 30, 1, 1, 64, &h100), TSR_OK);
}

static void test_attention_visible(void)
{
    CU_ASSERT_TRUE(tsr_cuda_attention_visible(0, 0, 1));
    CU_ASSERT_TRUE(tsr_cuda_attention_visible(4, 3, 5));
    CU_ASSERT_FALSE(tsr_cuda_attention_visible(3, 4, 5)); /* the future */
    CU_ASSERT_FALSE(tsr_cuda_attention_visible(5, 5, 5)); /* a padded row */
}

/* Whether any query of block [q0, q0 + br) sees any key of [k0, k0 + bc). */
static int tile_needed(int64_t q0, int64_t br, int64_t k0, int64_t bc, int64_t t)
{
    for (int64_t i = q0; i < q0 + br && i < t; i++)
        for (int64_t j = k0; j < k0 + bc && j < t; j++)
            if (tsr_cuda_attention_visible(i, j, t))
                return 1;
    return 0;
}

/* The block ranges hold exactly the tiles with a visible pair: none is
 * missed, and none wholly above the diagonal is computed. */
static void test_attention_causal_ranges(void)
{
    const int64_t ts[] = {1, 2, 31, 32, 33, 63, 64, 65, 77, 128, 200, 257};
    const int64_t tiles[][2] = {{64, 64}, {64, 32}, {32, 32}, {32, 64}};
    int64_t wrong = 0, computed = 0;
    for (size_t a = 0; a < sizeof ts / sizeof ts[0]; a++)
        for (size_t b = 0; b < sizeof tiles / sizeof tiles[0]; b++) {
            int64_t t = ts[a], br = tiles[b][0], bc = tiles[b][1];
            int64_t nq = (t + br - 1) / br, nk = (t + bc - 1) / bc;
            for (int64_t qb = 0; qb < nq; qb++) {
                int64_t kend = tsr_cuda_attention_key_blocks(qb * br, br, bc, t);
                wrong += kend > nk;
                for (int64_t kb = 0; kb < nk; kb++) {
                    int64_t need = tile_needed(qb * br, br, kb * bc, bc, t);
                    wrong += need != (kb < kend);
                    wrong += need != (qb >= tsr_cuda_attention_first_query_block(kb * bc, br));
                    computed += need;
                }
            }
        }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_TRUE(computed > 0);
    /* by hand: T 257, 64x32: the last query block (row 256 only) needs
     * all 9 key blocks, the first needs 2; key block 8 starts at query
     * block 4 */
    CU_ASSERT_EQUAL(tsr_cuda_attention_key_blocks(256, 64, 32, 257), 9);
    CU_ASSERT_EQUAL(tsr_cuda_attention_key_blocks(0, 64, 32, 257), 2);
    CU_ASSERT_EQUAL(tsr_cuda_attention_first_query_block(256, 64), 4);
    CU_ASSERT_EQUAL(tsr_cuda_attention_key_blocks(0, 64, 64, 1), 1);
}

/* ---- linear ---------------------------------------------------------------- */

static void assert_matrix(const tsr_cuda_gemm_matrix *got, const tsr_cuda_gemm_matrix *want)
{
    CU_ASSERT_EQUAL(got->buffer, want->buffer);
    CU_ASSERT_EQUAL(got->rows, want->rows);
    CU_ASSERT_EQUAL(got->cols, want->cols);
    CU_ASSERT_EQUAL(got->ld, want->ld);
}

static void test_linear_map_fields(void)
{
    tsr_cuda_linear_shape s = {77, 33, 1000};
    /* by hand, for n 77, in 33, out 1000: {trans_a, trans_b, m, n, k, a, b, c, beta} */
    const tsr_cuda_gemm_map want[TSR_CUDA_LINEAR_PRODUCTS] = {
        [TSR_CUDA_LINEAR_FORWARD] = {1, 0, 1000, 77, 33, {TSR_CUDA_BUF_WEIGHT, 33, 1000, 33},
                                     {TSR_CUDA_BUF_INP, 33, 77, 33},
                                     {TSR_CUDA_BUF_OUT, 1000, 77, 1000}, 0.0f},
        [TSR_CUDA_LINEAR_DINP] = {0, 0, 33, 77, 1000, {TSR_CUDA_BUF_WEIGHT, 33, 1000, 33},
                                  {TSR_CUDA_BUF_DOUT, 1000, 77, 1000},
                                  {TSR_CUDA_BUF_DINP, 33, 77, 33}, 1.0f},
        [TSR_CUDA_LINEAR_DWEIGHT] = {0, 1, 33, 1000, 77, {TSR_CUDA_BUF_INP, 33, 77, 33},
                                     {TSR_CUDA_BUF_DOUT, 1000, 77, 1000},
                                     {TSR_CUDA_BUF_DWEIGHT, 33, 1000, 33}, 1.0f},
    };
    for (int p = 0; p < TSR_CUDA_LINEAR_PRODUCTS; p++) {
        const tsr_cuda_gemm_map *w = &want[p];
        tsr_cuda_gemm_map m;
        CU_ASSERT_EQUAL_FATAL(tsr_cuda_gemm_map_init(&m, (tsr_cuda_linear_product)p, &s), TSR_OK);
        CU_ASSERT_TRUE(m.trans_a == w->trans_a && m.trans_b == w->trans_b && m.m == w->m &&
                       m.n == w->n && m.k == w->k);
        assert_matrix(&m.a, &w->a);
        assert_matrix(&m.b, &w->b);
        assert_matrix(&m.c, &w->c);
        CU_ASSERT_EQUAL(m.beta, w->beta);
    }
    tsr_cuda_gemm_map m;
    CU_ASSERT_EQUAL(tsr_cuda_gemm_map_init(&m, TSR_CUDA_LINEAR_PRODUCTS, &s), TSR_ERR_INVALID_ARG);
}

/* Element (r, c) of a column-major matrix, op applied: what cuBLAS reads. */
static double op_at(const float *x, int64_t ld, int trans, int64_t r, int64_t c)
{
    return trans ? x[r * ld + c] : x[c * ld + r];
}

/* C = op(A) op(B) + beta C, column-major, as cuBLAS defines it; the
 * operand shapes must agree with the map (else a mismatch counts). */
static int64_t run_map(const tsr_cuda_gemm_map *m, float *const bufs[])
{
    int64_t bad = 0;
    bad += (m->trans_a ? m->a.cols : m->a.rows) != m->m;
    bad += (m->trans_a ? m->a.rows : m->a.cols) != m->k;
    bad += (m->trans_b ? m->b.cols : m->b.rows) != m->k;
    bad += (m->trans_b ? m->b.rows : m->b.cols) != m->n;
    bad += m->c.rows != m->m || m->c.cols != m->n;
    if (bad)
        return bad;
    const float *a = bufs[m->a.buffer], *b = bufs[m->b.buffer];
    float *c = bufs[m->c.buffer];
    for (int64_t j = 0; j < m->n; j++)
        for (int64_t i = 0; i < m->m; i++) {
            double s = 0.0;
            for (int64_t l = 0; l < m->k; l++)
                s += op_at(a, m->a.ld, m->trans_a, i, l) * op_at(b, m->b.ld, m->trans_b, l, j);
            c[j * m->c.ld + i] = (float)(s + m->beta * c[j * m->c.ld + i]);
        }
    return 0;
}

static void fill_ints(float *x, int64_t n, int64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((i * 7 + seed * 13 + (i / 5) * 3) % 7 - 3);
}

/* The maps, executed on the row-major buffers, are the row-major products. */
static void test_linear_map_semantics(void)
{
    const tsr_cuda_linear_shape shapes[] = {{1, 33, 1}, {3, 5, 7}, {77, 33, 10}, {2, 1, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = shapes[s].n, ic = shapes[s].in_features, oc = shapes[s].out_features;
        float *w = calloc((size_t)(oc * ic), sizeof(float));
        float *inp = calloc((size_t)(n * ic), sizeof(float));
        float *dout = calloc((size_t)(n * oc), sizeof(float));
        float *out = calloc((size_t)(n * oc), sizeof(float));
        float *dinp = calloc((size_t)(n * ic), sizeof(float));
        float *dw = calloc((size_t)(oc * ic), sizeof(float));
        fill_ints(w, oc * ic, 1);
        fill_ints(inp, n * ic, 2);
        fill_ints(dout, n * oc, 3);
        fill_ints(out, n * oc, 4); /* overwritten: beta 0 */
        fill_ints(dinp, n * ic, 5); /* accumulated into */
        fill_ints(dw, oc * ic, 6);
        float *init_dinp = malloc((size_t)(n * ic) * sizeof(float));
        float *init_dw = malloc((size_t)(oc * ic) * sizeof(float));
        memcpy(init_dinp, dinp, (size_t)(n * ic) * sizeof(float));
        memcpy(init_dw, dw, (size_t)(oc * ic) * sizeof(float));
        float *const bufs[] = {w, inp, dout, out, dinp, dw}; /* tsr_cuda_linear_buffer order */
        int64_t bad = 0;
        for (int p = 0; p < TSR_CUDA_LINEAR_PRODUCTS; p++) {
            tsr_cuda_gemm_map m;
            CU_ASSERT_EQUAL_FATAL(tsr_cuda_gemm_map_init(&m, (tsr_cuda_linear_product)p,
                                                         &shapes[s]),
                                  TSR_OK);
            bad += run_map(&m, bufs);
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t o = 0; o < oc; o++) {
                double ref = 0.0;
                for (int64_t c = 0; c < ic; c++)
                    ref += inp[i * ic + c] * w[o * ic + c];
                bad += out[i * oc + o] != (float)ref;
            }
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < ic; c++) {
                double ref = init_dinp[i * ic + c];
                for (int64_t o = 0; o < oc; o++)
                    ref += dout[i * oc + o] * w[o * ic + c];
                bad += dinp[i * ic + c] != (float)ref;
            }
        for (int64_t o = 0; o < oc; o++)
            for (int64_t c = 0; c < ic; c++) {
                double ref = init_dw[o * ic + c];
                for (int64_t i = 0; i < n; i++)
                    ref += dout[i * oc + o] * inp[i * ic + c];
                bad += dw[o * ic + c] != (float)ref;
            }
        CU_ASSERT_EQUAL(bad, 0);
        free(w), free(inp), free(dout), free(out), free(dinp), free(dw);
        free(init_dinp), free(init_dw);
    }
}

static void test_linear_shape_checks(void)
{
    tsr_cuda_linear_shape ok = {1, 1, 1}, zero = {0, 33, 1}, neg = {77, -1, 1};
    tsr_cuda_linear_shape huge = {77, 33, 1LL << 31};
    CU_ASSERT_EQUAL(tsr_cuda_linear_shape_check(&ok), TSR_OK);
    CU_ASSERT_EQUAL(tsr_cuda_linear_shape_check(&zero), TSR_ERR_INVALID_ARG);
    CU_ASSERT_TRUE(error_mentions("n 0", "at least 1"));
    CU_ASSERT_EQUAL(tsr_cuda_linear_shape_check(&neg), TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_linear_shape_check(&huge), TSR_ERR_UNSUPPORTED);
    CU_ASSERT_TRUE(error_mentions("2147483648", "2^31"));
    CU_ASSERT_EQUAL(tsr_cuda_linear_shape_check(NULL), TSR_ERR_INVALID_ARG);
    tsr_cuda_gemm_map m;
    CU_ASSERT_EQUAL(tsr_cuda_gemm_map_init(&m, TSR_CUDA_LINEAR_FORWARD, &zero),
                    TSR_ERR_INVALID_ARG);
}

static void test_linear_sizes_and_geometry(void)
{
    CU_ASSERT_EQUAL(tsr_cuda_linear_workspace_bytes(9), 32LL << 20);
    CU_ASSERT_EQUAL(tsr_cuda_linear_workspace_bytes(10), 32LL << 20);
    CU_ASSERT_EQUAL(tsr_cuda_linear_workspace_bytes(8), 4LL << 20);
    CU_ASSERT_EQUAL(tsr_cuda_linear_stride_blocks(0), 1);
    CU_ASSERT_EQUAL(tsr_cuda_linear_stride_blocks(1), 1);
    CU_ASSERT_EQUAL(tsr_cuda_linear_stride_blocks(256), 1);
    CU_ASSERT_EQUAL(tsr_cuda_linear_stride_blocks(257), 2);
    CU_ASSERT_EQUAL(tsr_cuda_linear_stride_blocks(1000000000), 4096);
    const int64_t cs[][5] = {/* n, oc -> chunks, rows per chunk, grid_x */
                             {1, 1, 1, 1, 1},           {77, 1000, 2, 39, 4},
                             {64, 256, 1, 64, 1},       {65, 257, 2, 33, 2},
                             {100000, 768, 32, 3125, 3}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        tsr_cuda_colsum_plan p;
        tsr_cuda_colsum_plan_init(&p, cs[i][0], cs[i][1]);
        CU_ASSERT_EQUAL(p.chunks, cs[i][2]);
        CU_ASSERT_EQUAL(p.rows_per_chunk, cs[i][3]);
        CU_ASSERT_EQUAL(p.grid_x, cs[i][4]);
    }
    int64_t wrong = 0; /* every row in exactly one non-empty chunk */
    for (int64_t n = 1; n <= 5000; n++) {
        tsr_cuda_colsum_plan p;
        tsr_cuda_colsum_plan_init(&p, n, 3);
        wrong += p.chunks < 1 || p.chunks > TSR_CUDA_COLSUM_MAX_CHUNKS;
        wrong += p.chunks * p.rows_per_chunk < n || (p.chunks - 1) * p.rows_per_chunk >= n;
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

static void test_linear_buffers(void)
{
    const tsr_cuda_linear_shape shapes[] = {{77, 33, 1000}, {1, 768, 1}, {77, 33, 1000}};
    tsr_cuda_linear_buffers b;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_linear_buffers_plan(&b, TSR_CUDA_LINEAR_FP32, shapes, 3, 9),
                          TSR_OK);
    CU_ASSERT_EQUAL(b.workspace_bytes, 33554432);
    CU_ASSERT_EQUAL(b.inp_bf16_bytes, 0);
    CU_ASSERT_EQUAL(b.dout_bf16_bytes, 0);
    CU_ASSERT_EQUAL(b.colsum_bytes, 2 * 1000 * 4); /* 77 rows: 2 chunks of 1000 */
    CU_ASSERT_EQUAL(b.total_bytes, 33554432 + 8000);
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_linear_buffers_plan(&b, TSR_CUDA_LINEAR_BF16, shapes, 3, 8),
                          TSR_OK);
    CU_ASSERT_EQUAL(b.workspace_bytes, 4194304);
    CU_ASSERT_EQUAL(b.inp_bf16_bytes, 77 * 33 * 2); /* 2541 > 768 elements */
    CU_ASSERT_EQUAL(b.dout_bf16_bytes, 77 * 1000 * 2);
    CU_ASSERT_EQUAL(b.total_bytes, 4194304 + 5082 + 154000 + 8000);
    CU_ASSERT_EQUAL(tsr_cuda_linear_buffers_plan(&b, TSR_CUDA_LINEAR_BF16, shapes, 3, 7),
                    TSR_ERR_UNSUPPORTED);
    CU_ASSERT_TRUE(error_mentions("compute capability 8.0", "7.x"));
    CU_ASSERT_EQUAL(tsr_cuda_linear_buffers_plan(&b, TSR_CUDA_LINEAR_FP32, shapes, 0, 9),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(tsr_cuda_linear_buffers_plan(&b, (tsr_cuda_linear_precision)7, shapes, 1, 9),
                    TSR_ERR_INVALID_ARG);
    const tsr_cuda_linear_shape bad[] = {{77, 33, 1000}, {77, 0, 1000}};
    CU_ASSERT_EQUAL(tsr_cuda_linear_buffers_plan(&b, TSR_CUDA_LINEAR_FP32, bad, 2, 9),
                    TSR_ERR_INVALID_ARG);
}

static const tsr_test_case attention_cases[] = {
    TSR_TEST(test_attention_smem_bytes),
    TSR_TEST(test_attention_plan_h100_and_a100),
    TSR_TEST(test_attention_plan_smaller_devices),
    TSR_TEST(test_attention_plan_refusals),
    TSR_TEST(test_attention_visible),
    TSR_TEST(test_attention_causal_ranges),
};

static const tsr_test_case linear_cases[] = {
    TSR_TEST(test_linear_map_fields),
    TSR_TEST(test_linear_map_semantics),
    TSR_TEST(test_linear_shape_checks),
    TSR_TEST(test_linear_sizes_and_geometry),
    TSR_TEST(test_linear_buffers),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("cuda_attention_plan", attention_cases),
                                     TSR_SUITE("cuda_linear_plan", linear_cases)};
    return tsr_test_main(suites, 2);
}
