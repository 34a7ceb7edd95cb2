/*
 * test_optimizer_pieces.c - the pieces the optimizer's walks make
 * (optimizer.h), which the CPU's kernels and the GPU's run alike, on
 * optimizer_case.h's model:
 *   - the norm's pieces, listed in order, for the sharded ranges, for one
 *     rank owning everything, and for a model without tensors; their
 *     count; the sum of squares equal to a brute force over the counted
 *     elements (writer, not frozen, owned) to 1e-12, and bitwise the
 *     ranges' sums added in order, which given pieces' sums also make;
 *   - AdamW's pieces in order with their moments' offsets and decay,
 *     sharded and not; the update equal, element by element, to
 *     tsr_adamw_update on each element alone (1e-6 relative), with the
 *     elements outside the ranges untouched under the sharded state.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "optimizer_case.h"
#include "tessera/kernels.h"

typedef struct piece_log {
    char text[512];
} piece_log;

static void log_norm(void *ctx, size_t range, size_t offset, size_t count)
{
    piece_log *log = ctx;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof log->text - used, "[r%zu %zu+%zu]", range, offset, count);
}

static void log_adamw(void *ctx, size_t offset, size_t state, size_t count, bool decay)
{
    piece_log *log = ctx;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof log->text - used, "[%zu+%zu s%zu%s]", offset, count, state,
             decay ? " d" : "");
}

static void test_norm_pieces(void)
{
    float params[OC_PARAMS], grads[OC_PARAMS];
    optimizer_case c;
    oc_make(&c, params, grads);
    piece_log log = {""};
    tsr_optimizer_norm_pieces(&c.model, &c.sharded, log_norm, &log);
    /* range [100, 500): tensor a's part; b is another replica's; frozen
     * has no gradient; range [600, 850) lies in c */
    CU_ASSERT_STRING_EQUAL(log.text, "[r0 100+200][r1 600+250]");
    CU_ASSERT_EQUAL(tsr_optimizer_norm_piece_count(&c.model, &c.sharded), 2);
    log.text[0] = '\0';
    tsr_optimizer_norm_pieces(&c.model, NULL, log_norm, &log);
    CU_ASSERT_STRING_EQUAL(log.text, "[r0 0+300][r0 500+500]");
    tsr_model bare = c.model; /* no tensors: every owned element */
    bare.tensors = NULL;
    bare.tensor_count = 0;
    log.text[0] = '\0';
    tsr_optimizer_norm_pieces(&bare, &c.owned, log_norm, &log);
    CU_ASSERT_STRING_EQUAL(log.text, "[r0 100+400][r1 600+250]");

    for (int i = 0; i < OC_PARAMS; i++)
        grads[i] = 0.01f * (float)(i % 97) - 0.3f;
    double want = 0.0;
    for (int i = 0; i < OC_PARAMS; i++) {
        bool owned = (i >= 100 && i < 500) || (i >= 600 && i < 850);
        bool counted = i < 300 || i >= 500; /* a and c write; b does not */
        if (owned && counted)
            want += (double)grads[i] * grads[i];
    }
    double got = tsr_optimizer_grad_sumsq(&c.model, &c.sharded);
    CU_ASSERT_TRUE(fabs(got - want) <= 1e-12 * want);
    /* the ranges' sums, then their total: a device's partials combine to
     * the CPU's bits */
    double a = tsr_sum_squares(grads + 100, 200), b = tsr_sum_squares(grads + 600, 250);
    const double sums[2] = {a, b};
    CU_ASSERT_EQUAL(tsr_optimizer_combine_sumsq(&c.model, &c.sharded, sums), got);
    CU_ASSERT_EQUAL(got, 0.0 + a + b);
    /* two pieces in the first range: (p0 + p1) + p2 */
    const tsr_shard_range two[2] = {{0, 600, 0}, {600, 400, 600}};
    tsr_param_shard grouped = {two, 2, false};
    double p0 = tsr_sum_squares(grads, 300), p1 = tsr_sum_squares(grads + 500, 100);
    double p2 = tsr_sum_squares(grads + 600, 400);
    const double three[3] = {p0, p1, p2};
    double total = tsr_optimizer_grad_sumsq(&c.model, &grouped);
    CU_ASSERT_EQUAL(total, (0.0 + p0 + p1) + (0.0 + p2));
    CU_ASSERT_EQUAL(tsr_optimizer_combine_sumsq(&c.model, &grouped, three), total);
}

static void test_adamw_pieces_and_update(void)
{
    float params[OC_PARAMS], grads[OC_PARAMS];
    optimizer_case c;
    oc_make(&c, params, grads);
    piece_log log = {""};
    tsr_optimizer_adamw_pieces(&c.model, &c.sharded, log_adamw, &log);
    CU_ASSERT_STRING_EQUAL(log.text,
                           "[100+200 s0 d][300+200 s200][600+100 s400 d][700+150 s500]");
    log.text[0] = '\0';
    tsr_optimizer_adamw_pieces(&c.model, &c.owned, log_adamw, &log); /* moments for all */
    CU_ASSERT_STRING_EQUAL(log.text,
                           "[0+300 s0 d][300+200 s300][500+200 s500 d][700+300 s700]");

    for (int i = 0; i < OC_PARAMS; i++) {
        params[i] = 0.5f - 0.001f * (float)i;
        grads[i] = 0.02f * (float)(i % 13) - 0.1f;
    }
    float before[OC_PARAMS], m[650] = {0}, v[650] = {0};
    memcpy(before, params, sizeof params);
    tsr_adamw_args a = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.5f};
    tsr_optimizer_adamw(&c.model, &c.sharded, NULL, m, v, &a);
    size_t wrong = 0, untouched = 0;
    for (int i = 0; i < OC_PARAMS; i++) {
        int state = i >= 100 && i < 500 ? i - 100 : i >= 600 && i < 850 ? i - 200 : -1;
        if (state < 0) {
            untouched += params[i] == before[i];
            continue;
        }
        bool decay = i < 300 || (i >= 500 && i < 700);
        float w = before[i], mi = 0.0f, vi = 0.0f;
        tsr_adamw_update(&w, &grads[i], &mi, &vi, 1, a.lr, a.beta1, a.beta2, a.eps,
                         decay ? a.weight_decay : 0.0f, a.step, a.grad_scale);
        wrong += fabsf(params[i] - w) > 1e-6f * fabsf(w) ||
                 fabsf(m[state] - mi) > 1e-6f * fabsf(mi);
    }
    CU_ASSERT_EQUAL(wrong, 0u);
    CU_ASSERT_EQUAL(untouched, OC_PARAMS - 650u);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_norm_pieces),
    TSR_TEST(test_adamw_pieces_and_update),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("optimizer_pieces", cases)};
    return tsr_test_main(suites, 1);
}
