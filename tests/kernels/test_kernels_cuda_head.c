/*
 * test_kernels_cuda_head.c - the fused LM head on the GPU
 * (kernels/cuda/lm_head_cuda.h) against the same head made of the CPU
 * kernels over all rows at once (head_check.h). Exits 77 (skipped) where no GPU is
 * visible.
 *
 * Shapes: 1 row (one chunk); 300 rows in chunks of 64 (the last 44) over
 * a shard of 1000 columns whose last 10 are padding; 77 rows in chunks of
 * 16 (the last 13) of width 768 over the shard [500, 1013) of a 1000-word
 * vocabulary, so most targets lie in another shard and 13 columns are
 * padding. Row weights include zeros (rows the loss mask drops).
 * Logits are about N(0, 1); every third row's target is its argmax.
 *   - fp32: row_loss within 1e-5 relative (floor 1), row_correct equal,
 *     dx and dweight within 1e-5 relative L2, added into pre-filled
 *     values as large as the increments;
 *   - bf16 (the weight's bf16 copy; x and the logits' gradient rounded by
 *     the context): row_loss within 2e-2, dx and dweight within 2e-2
 *     relative L2 of the fp32 CPU results, row_correct 0 or 1 and equal on
 *     at least 95% of rows (a bf16 product may reorder near ties);
 *   - evaluation (train false) writes the loss and leaves dx and dweight
 *     bitwise as they were; a frozen weight (dweight NULL) still gives dx;
 *   - the reduction callback sees, per chunk, the max over the chunk's
 *     rows then the sum over twice as many, on the head's stream, and its
 *     error ends the head with that status; losses repeat bitwise; a
 *     missing dx and a misaligned x refused before anything runs.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_check.h"
#include "harness.h"
#include "head_check.h"
#include "kernel_check.h"
#include "kernels/cuda/lm_head_cuda.h"
#include "tessera/kernels.h"

#define HEAD_FP32_TOL 1e-5
#define HEAD_BF16_TOL 2e-2
#define HEAD_BF16_CORRECT_AGREE 0.95

/* What the callback saw: it checks the order max (rows) then sum (2 rows). */
typedef struct reduce_log {
    int calls, bad_order, fail_at;
    int64_t last_max_count;
    void *stream;
} reduce_log;

static tsr_status logging_reduce(void *ctx, float *x, int64_t count, tsr_head_reduce_op op,
                                 void *stream)
{
    reduce_log *log = ctx;
    if (x == NULL || stream != log->stream)
        log->bad_order++;
    if (op == TSR_HEAD_REDUCE_MAX) {
        if (log->calls % 2 != 0)
            log->bad_order++;
        log->last_max_count = count;
    } else if (log->calls % 2 != 1 || count != 2 * log->last_max_count) {
        log->bad_order++;
    }
    if (++log->calls == log->fail_at)
        return tsr_error_set(TSR_ERR_COMM, "the test's reduction failed on purpose");
    return TSR_OK;
}

static void expect_l2(const char *what, const hc_case *c, const float *got, const float *want,
                      int64_t n, double tol)
{
    double e = tsr_test_rel_l2(got, want, (size_t)n);
    if (!(e <= tol))
        printf("\n  %s (n %lld, hidden %lld, v %lld): relative L2 %.3g > %.3g", what,
               (long long)c->n, (long long)c->hidden, (long long)c->v_local, e, tol);
    CU_ASSERT_TRUE(e <= tol);
}

static void run_case(const hc_case *c, tsr_cuda_linear_precision precision)
{
    const int bf16 = precision == TSR_CUDA_LINEAR_BF16;
    const double tol = bf16 ? HEAD_BF16_TOL : HEAD_FP32_TOL;
    int64_t n = c->n, h = c->hidden, v = c->v_local;
    uint64_t seed = (uint64_t)(n * 7 + h);
    tsr_head_shape shape = {n, h, v, c->vocab_start, c->vocab};
    tsr_head_plan plan;
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&plan, &shape, c->budget_rows * v * 4), TSR_OK);
    tsr_cuda_linear_shape shapes[2];
    int64_t shape_count = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_linear_head_shapes(&plan, shapes, &shape_count), TSR_OK);
    tsr_cuda_linear *linear = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_cuda_linear_create(&linear, precision, shapes, shape_count), TSR_OK);

    float *x = kc_alloc(n * h), *w = kc_alloc(v * h), *row_weight = kc_alloc(n);
    float *dx0 = kc_alloc(n * h), *dw0 = kc_alloc(v * h);
    int32_t *targets = calloc((size_t)n, sizeof *targets);
    kc_fill_normal(x, n * h, seed, 0.0f, 1.0f);
    kc_fill_normal(w, v * h, seed + 1, 0.0f, 1.0f / sqrtf((float)h)); /* logits ~ N(0, 1) */
    hc_set_targets(c, x, w, targets, row_weight);
    hc_ref ref = {kc_alloc(n), kc_alloc(n), kc_alloc(n * h), kc_alloc(v * h)};
    hc_reference(c, x, w, targets, row_weight, &ref);
    /* pre-filled gradients as large as what the head adds to them */
    kc_fill_normal(dx0, n * h, seed + 2, 0.0f, hc_rms(ref.dx, n * h));
    kc_fill_normal(dw0, v * h, seed + 3, 0.0f, hc_rms(ref.dweight, v * h));
    for (int64_t i = 0; i < n * h; i++)
        ref.dx[i] += dx0[i];
    for (int64_t i = 0; i < v * h; i++)
        ref.dweight[i] += dw0[i];

    const void *weight;
    uint16_t *w16 = NULL;
    if (bf16) {
        w16 = calloc((size_t)(v * h), sizeof *w16);
        tsr_bf16_from_floats(w16, w, v * h);
        weight = cc_dev_from(w16, (size_t)(v * h) * sizeof *w16);
    } else {
        weight = cc_dev_floats(w, v * h);
    }
    tsr_head_io io = {
        .x = cc_dev_floats(x, n * h),
        .targets = cc_dev_from(targets, (size_t)n * sizeof *targets),
        .row_weight = cc_dev_floats(row_weight, n),
        .row_loss = cc_dev_floats(NULL, n),
        .row_correct = cc_dev_floats(NULL, n),
        .dx = cc_dev_floats(dx0, n * h),
        .scratch = cc_dev_from(NULL, (size_t)plan.scratch_bytes),
    };
    float *dweight = cc_dev_floats(dw0, v * h);
    reduce_log log = {.stream = cc_stream()};
    CU_ASSERT_EQUAL(tsr_cuda_lm_head_forward(linear, &plan, &io, weight, dweight, true,
                                             logging_reduce, &log, cc_stream()),
                    TSR_OK);
    CU_ASSERT_EQUAL(log.calls, 2 * plan.chunks);
    CU_ASSERT_EQUAL(log.bad_order, 0);
    CU_ASSERT_EQUAL(log.last_max_count, plan.last_rows);

    float *loss = kc_alloc(n), *correct = kc_alloc(n), *dx = kc_alloc(n * h);
    float *dw = kc_alloc(v * h), *again = kc_alloc(n);
    cc_floats_to_host(loss, io.row_loss, n);
    cc_floats_to_host(correct, io.row_correct, n);
    cc_floats_to_host(dx, io.dx, n * h);
    cc_floats_to_host(dw, dweight, v * h);
    char what[64];
    snprintf(what, sizeof what, "%s row_loss", bf16 ? "bf16" : "fp32");
    cc_expect_close(what, n, v, loss, ref.loss, n, tol, 1.0);
    int64_t agree = 0, binary = 1;
    for (int64_t r = 0; r < n; r++) {
        agree += correct[r] == ref.correct[r];
        binary &= correct[r] == 0.0f || correct[r] == 1.0f;
    }
    CU_ASSERT_TRUE(binary);
    if (bf16) {
        CU_ASSERT_TRUE((double)agree >= HEAD_BF16_CORRECT_AGREE * (double)n);
    } else {
        CU_ASSERT_EQUAL(agree, n);
    }
    expect_l2(bf16 ? "bf16 dx" : "fp32 dx", c, dx, ref.dx, n * h, tol);
    expect_l2(bf16 ? "bf16 dweight" : "fp32 dweight", c, dw, ref.dweight, v * h, tol);

    /* evaluation: the loss again, bitwise, and no gradient touched */
    float *dx_before = kc_alloc(n * h);
    memcpy(dx_before, dx, (size_t)(n * h) * sizeof(float));
    CU_ASSERT_EQUAL(tsr_cuda_lm_head_forward(linear, &plan, &io, weight, dweight, false, NULL,
                                             NULL, cc_stream()),
                    TSR_OK);
    cc_floats_to_host(again, io.row_loss, n);
    cc_expect_bits("evaluation row_loss repeats", n, v, again, loss, (size_t)n * sizeof(float));
    cc_floats_to_host(dx, io.dx, n * h);
    cc_expect_bits("evaluation leaves dx", n, h, dx, dx_before, (size_t)(n * h) * sizeof(float));

    /* frozen: dx still grows by what it grew before; dweight not asked */
    CU_ASSERT_EQUAL(tsr_cuda_lm_head_forward(linear, &plan, &io, weight, NULL, true, NULL, NULL,
                                             cc_stream()),
                    TSR_OK);
    cc_floats_to_host(dx, io.dx, n * h);
    for (int64_t i = 0; i < n * h; i++) /* twice the increment over dx0 */
        ref.dx[i] = dx_before[i] + (dx_before[i] - dx0[i]);
    expect_l2("frozen dx", c, dx, ref.dx, n * h, 1e-5);

    /* a failing reduction ends the head with its status */
    reduce_log failing = {.stream = cc_stream(), .fail_at = 2};
    CU_ASSERT_EQUAL(tsr_cuda_lm_head_forward(linear, &plan, &io, weight, dweight, true,
                                             logging_reduce, &failing, cc_stream()),
                    TSR_ERR_COMM);
    CU_ASSERT_EQUAL(failing.calls, 2);
    tsr_head_io missing = io;
    missing.dx = NULL;
    CU_ASSERT_EQUAL(tsr_cuda_lm_head_forward(linear, &plan, &missing, weight, dweight, true,
                                             NULL, NULL, cc_stream()),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "dx"));
    tsr_head_io misaligned = io;
    misaligned.x = io.x + 1;
    CU_ASSERT_EQUAL(tsr_cuda_lm_head_forward(linear, &plan, &misaligned, weight, dweight, false,
                                             NULL, NULL, cc_stream()),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "x is not aligned"));
    cc_test_device_clean();

    void *dev[] = {(void *)io.x,    (void *)weight, (void *)io.targets, (void *)io.row_weight,
                   io.row_loss,     io.row_correct, io.dx,              dweight,
                   io.scratch};
    void *host[] = {x,           w,      row_weight,  dx0,  dw0,     targets, ref.loss,
                    ref.correct, ref.dx, ref.dweight, loss, correct, dx,      dw,
                    again,       dx_before, w16};
    cc_free(dev, CC_COUNT(dev), host, CC_COUNT(host));
    tsr_cuda_linear_destroy(linear);
}

static void test_head_fp32(void)
{
    CU_ASSERT_STRING_EQUAL(tsr_linear_precision(), "fp32"); /* the CPU reference */
    for (int i = 0; i < HC_CASES; i++)
        run_case(&hc_cases[i], TSR_CUDA_LINEAR_FP32);
}

static void test_head_bf16(void)
{
    for (int i = 0; i < HC_CASES; i++)
        run_case(&hc_cases[i], TSR_CUDA_LINEAR_BF16);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_head_fp32),
    TSR_TEST(test_head_bf16),
    TSR_TEST(cc_test_device_clean),
};

int main(void)
{
    return cc_main("cuda_lm_head", cases, sizeof cases / sizeof cases[0]);
}
