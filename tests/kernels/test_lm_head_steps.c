/*
 * test_lm_head_steps.c - the fused LM head's chunk loop (tsr_head_run,
 * kernels/lm_head_steps.h) with the CPU kernels as its steps, against the
 * one-shot CPU reference of head_check.h. A plain unit test: it runs in
 * every build, GPU or not; the GPU's steps are test_kernels_cuda_head's.
 *
 *   - on one shard, for head_check.h's shapes: loss and argmax flags, dx
 *     and dweight (added to pre-filled values) within 1e-6 of the
 *     reference; evaluation gives the same loss and touches no gradient;
 *   - every chunk's steps in order, on that chunk's rows: the max
 *     reduced over the chunk's rows, then sum-exp and target logit over
 *     twice as many in one reduction; a failing step ends the loop;
 *   - two shards of a 1000-word vocabulary padded to 1024, each a thread,
 *     reducing through a barrier: both shards' losses bitwise equal and
 *     within 1e-6 of the reference over the whole vocabulary, the shards'
 *     dx summed and their dweight rows likewise.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "head_check.h"
#include "kernel_check.h"
#include "kernels/lm_head_steps.h"
#include "tessera/kernels.h"

/* the chunked head against the one-shot reference: rows are independent,
 * so only the weight gradient's order of summation differs, and the
 * CPU's products may block a chunk's rows differently */
#define HEAD_RUN_TOL 1e-6

/* Two threads as two vocabulary shards: a reduction publishes each
 * shard's buffer, both combine them in shard order, then each writes its
 * own. */
typedef struct shard_group {
    pthread_barrier_t barrier;
    float *slot[2];
} shard_group;

/* The CPU's steps (tsr_head_cpu_ops), each traced: one letter a step,
 * R and S (the reductions) with their counts, and the step numbered
 * fail_after failing. */
typedef struct cpu_head {
    tsr_head_cpu steps; /* reduce_ctx: this struct, reduce: group_reduce or NULL */
    shard_group *group; /* NULL: one shard */
    int shard;
    float *combined;    /* 2 chunk_rows floats: a reduction's result */
    char trace[4096];
    int fail_after;     /* > 0: the step of that number fails */
    int taken;
} cpu_head;

static tsr_status group_reduce(void *ctx, float *x, int64_t count, tsr_head_reduce_op op)
{
    cpu_head *h = ctx;
    h->group->slot[h->shard] = x;
    pthread_barrier_wait(&h->group->barrier);
    const float *a = h->group->slot[0], *b = h->group->slot[1];
    for (int64_t i = 0; i < count; i++)
        h->combined[i] = op == TSR_HEAD_REDUCE_MAX ? fmaxf(a[i], b[i]) : a[i] + b[i];
    pthread_barrier_wait(&h->group->barrier); /* both have read both */
    memcpy(x, h->combined, (size_t)count * sizeof *x);
    return TSR_OK;
}

/* A traced head on one shard (group NULL) or on shard `shard` of group. */
static void head_init(cpu_head *h, const tsr_head_plan *plan, const float *w, float *dw,
                      shard_group *group, int shard, float *combined)
{
    memset(h, 0, sizeof *h);
    h->steps = (tsr_head_cpu){plan, w, dw, group != NULL ? group_reduce : NULL, h};
    h->group = group;
    h->shard = shard;
    h->combined = combined;
}

static tsr_status traced(cpu_head *h, tsr_status st, const char *what)
{
    size_t used = strlen(h->trace);
    snprintf(h->trace + used, sizeof h->trace - used, "%s", what);
    if (st == TSR_OK && ++h->taken == h->fail_after)
        return tsr_error_set(TSR_ERR_INTERNAL, "step %d fails on purpose", h->taken);
    return st;
}

static tsr_status trace_logits(void *ctx, float *logits, const float *x, int64_t rows)
{
    cpu_head *h = ctx;
    return traced(h, tsr_head_cpu_ops.logits(&h->steps, logits, x, rows), "L");
}

static tsr_status trace_row_max(void *ctx, float *row_max, const float *logits, int64_t rows)
{
    cpu_head *h = ctx;
    return traced(h, tsr_head_cpu_ops.row_max(&h->steps, row_max, logits, rows), "M");
}

static tsr_status trace_reduce(void *ctx, float *x, int64_t count, tsr_head_reduce_op op)
{
    cpu_head *h = ctx;
    char what[32];
    snprintf(what, sizeof what, "%c%lld", op == TSR_HEAD_REDUCE_MAX ? 'R' : 'S',
             (long long)count);
    return traced(h, tsr_head_cpu_ops.reduce(&h->steps, x, count, op), what);
}

static tsr_status trace_sumexp_target(void *ctx, float *sumexp, float *target_logit,
                                      const float *logits, const float *row_max,
                                      const int32_t *targets, int64_t rows)
{
    cpu_head *h = ctx;
    return traced(h,
                  tsr_head_cpu_ops.sumexp_target(&h->steps, sumexp, target_logit, logits,
                                                 row_max, targets, rows),
                  "E");
}

static tsr_status trace_loss(void *ctx, float *loss, float *correct, const float *sumexp,
                             const float *row_max, const float *target_logit, int64_t rows)
{
    cpu_head *h = ctx;
    return traced(h,
                  tsr_head_cpu_ops.loss(&h->steps, loss, correct, sumexp, row_max, target_logit,
                                        rows),
                  "C");
}

static tsr_status trace_to_grad(void *ctx, float *logits, const float *row_max,
                                const float *sumexp, const int32_t *targets,
                                const float *row_weight, int64_t rows)
{
    cpu_head *h = ctx;
    return traced(h,
                  tsr_head_cpu_ops.to_grad(&h->steps, logits, row_max, sumexp, targets,
                                           row_weight, rows),
                  "G");
}

static tsr_status trace_backward(void *ctx, float *dx, const float *dlogits, const float *x,
                                 int64_t rows)
{
    cpu_head *h = ctx;
    return traced(h, tsr_head_cpu_ops.backward(&h->steps, dx, dlogits, x, rows), "B");
}

static const tsr_head_ops cpu_ops = {trace_logits, trace_row_max, trace_reduce,
                                     trace_sumexp_target, trace_loss, trace_to_grad,
                                     trace_backward};

/* inputs of one head, with its io on host memory */
typedef struct head_inputs {
    float *x, *w, *row_weight, *dx, *dw, *loss, *correct, *scratch;
    int32_t *targets;
} head_inputs;

static void inputs_make(head_inputs *in, const hc_case *c, const tsr_head_plan *plan,
                        uint64_t seed)
{
    int64_t n = c->n, h = c->hidden, v = c->v_local;
    in->x = kc_alloc(n * h);
    in->w = kc_alloc(v * h);
    in->row_weight = kc_alloc(n);
    in->dx = kc_alloc(n * h);
    in->dw = kc_alloc(v * h);
    in->loss = kc_alloc(n);
    in->correct = kc_alloc(n);
    in->scratch = kc_alloc(plan->scratch_bytes / (int64_t)sizeof(float));
    in->targets = calloc((size_t)n, sizeof *in->targets);
    kc_fill_normal(in->x, n * h, seed, 0.0f, 1.0f);
    kc_fill_normal(in->w, v * h, seed + 1, 0.0f, 1.0f / sqrtf((float)h));
    kc_fill_normal(in->dx, n * h, seed + 2, 0.0f, 1e-3f);
    kc_fill_normal(in->dw, v * h, seed + 3, 0.0f, 1e-3f);
    hc_set_targets(c, in->x, in->w, in->targets, in->row_weight);
}

static void inputs_free(head_inputs *in)
{
    void *all[] = {in->x,    in->w,       in->row_weight, in->dx,     in->dw,
                   in->loss, in->correct, in->scratch,    in->targets};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static tsr_head_io io_of(const head_inputs *in)
{
    tsr_head_io io = {in->x, in->targets, in->row_weight, in->loss, in->correct, in->dx,
                      in->scratch};
    return io;
}

static void expect_l2(const char *what, const float *got, const float *want, int64_t n)
{
    double e = tsr_test_rel_l2(got, want, (size_t)n);
    if (!(e <= HEAD_RUN_TOL))
        printf("\n  %s: relative L2 %.3g > %.3g", what, e, HEAD_RUN_TOL);
    CU_ASSERT_TRUE(e <= HEAD_RUN_TOL);
}

static void test_run_one_shard(void)
{
    for (int i = 0; i < HC_CASES; i++) {
        const hc_case *c = &hc_cases[i];
        int64_t n = c->n, h = c->hidden, v = c->v_local;
        tsr_head_shape shape = {n, h, v, c->vocab_start, c->vocab};
        tsr_head_plan plan;
        CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&plan, &shape, c->budget_rows * v * 4),
                              TSR_OK);
        head_inputs in;
        inputs_make(&in, c, &plan, (uint64_t)(40 + i));
        hc_ref ref = {kc_alloc(n), kc_alloc(n), kc_alloc(n * h), kc_alloc(v * h)};
        memcpy(ref.dx, in.dx, (size_t)(n * h) * sizeof(float));
        memcpy(ref.dweight, in.dw, (size_t)(v * h) * sizeof(float));
        hc_reference(c, in.x, in.w, in.targets, in.row_weight, &ref);

        cpu_head head;
        head_init(&head, &plan, in.w, in.dw, NULL, 0, NULL);
        tsr_head_io io = io_of(&in);
        CU_ASSERT_EQUAL(tsr_head_run(&plan, &io, true, &cpu_ops, &head), TSR_OK);
        expect_l2("loss", in.loss, ref.loss, n);
        CU_ASSERT_EQUAL(memcmp(in.correct, ref.correct, (size_t)n * sizeof(float)), 0);
        expect_l2("dx", in.dx, ref.dx, n * h);
        expect_l2("dweight", in.dw, ref.dweight, v * h);
        int64_t ones = 0;
        for (int64_t r = 0; r < n; r++)
            ones += in.correct[r] == 1.0f;
        CU_ASSERT_TRUE(ones >= n / 3); /* every third row's target is its argmax */

        /* evaluation: the same loss, no gradient touched */
        float *dx_before = kc_alloc(n * h), *loss_before = kc_alloc(n);
        memcpy(dx_before, in.dx, (size_t)(n * h) * sizeof(float));
        memcpy(loss_before, in.loss, (size_t)n * sizeof(float));
        memset(in.loss, 0, (size_t)n * sizeof(float));
        cpu_head eval;
        head_init(&eval, &plan, in.w, in.dw, NULL, 0, NULL);
        CU_ASSERT_EQUAL(tsr_head_run(&plan, &io, false, &cpu_ops, &eval), TSR_OK);
        CU_ASSERT_EQUAL(memcmp(in.loss, loss_before, (size_t)n * sizeof(float)), 0);
        CU_ASSERT_EQUAL(memcmp(in.dx, dx_before, (size_t)(n * h) * sizeof(float)), 0);
        free(dx_before);
        free(loss_before);
        free(ref.loss);
        free(ref.correct);
        free(ref.dx);
        free(ref.dweight);
        inputs_free(&in);
    }
}

static void test_run_order(void)
{
    /* 20 rows in chunks of 8: 8, 8, 4 */
    hc_case c = {20, 8, 16, 0, 16, 8};
    tsr_head_shape shape = {c.n, c.hidden, c.v_local, 0, c.vocab};
    tsr_head_plan plan;
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&plan, &shape, 8 * 16 * 4), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(plan.chunks, 3);
    head_inputs in;
    inputs_make(&in, &c, &plan, 7);
    tsr_head_io io = io_of(&in);
    cpu_head head, eval, failing;
    head_init(&head, &plan, in.w, in.dw, NULL, 0, NULL);
    CU_ASSERT_EQUAL(tsr_head_run(&plan, &io, true, &cpu_ops, &head), TSR_OK);
    CU_ASSERT_STRING_EQUAL(head.trace, "LMR8ES16CGBLMR8ES16CGBLMR4ES8CGB");
    head_init(&eval, &plan, in.w, in.dw, NULL, 0, NULL);
    CU_ASSERT_EQUAL(tsr_head_run(&plan, &io, false, &cpu_ops, &eval), TSR_OK);
    CU_ASSERT_STRING_EQUAL(eval.trace, "LMR8ES16CLMR8ES16CLMR4ES8C");
    /* the 10th step (the second chunk's row max) fails: nothing after it */
    head_init(&failing, &plan, in.w, in.dw, NULL, 0, NULL);
    failing.fail_after = 10;
    CU_ASSERT_EQUAL(tsr_head_run(&plan, &io, true, &cpu_ops, &failing), TSR_ERR_INTERNAL);
    CU_ASSERT_STRING_EQUAL(failing.trace, "LMR8ES16CGBLM");
    CU_ASSERT_EQUAL(tsr_head_run(&plan, NULL, true, &cpu_ops, &head), TSR_ERR_INVALID_ARG);
    inputs_free(&in);
}

typedef struct shard_job {
    const tsr_head_plan *plan;
    tsr_head_io io;
    cpu_head head;
    tsr_status st;
} shard_job;

static void *run_shard(void *arg)
{
    shard_job *job = arg;
    job->st = tsr_head_run(job->plan, &job->io, true, &cpu_ops, &job->head);
    return NULL;
}

static void test_run_two_shards(void)
{
    /* vocabulary 1000 padded to 1024; 100 rows in chunks of 32 */
    const int64_t n = 100, h = 24, v = 512, vocab = 1000;
    hc_case whole = {n, h, 2 * v, 0, vocab, n};
    tsr_head_shape whole_shape = {n, h, 2 * v, 0, vocab};
    tsr_head_plan whole_plan;
    CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&whole_plan, &whole_shape, 1 << 30), TSR_OK);
    head_inputs in;
    inputs_make(&in, &whole, &whole_plan, 99);
    hc_ref ref = {kc_alloc(n), kc_alloc(n), kc_alloc(n * h), kc_alloc(2 * v * h)};
    memcpy(ref.dweight, in.dw, (size_t)(2 * v * h) * sizeof(float));
    hc_reference(&whole, in.x, in.w, in.targets, in.row_weight, &ref);

    shard_group group;
    pthread_barrier_init(&group.barrier, NULL, 2);
    tsr_head_plan plans[2];
    shard_job jobs[2];
    float *dx[2], *loss[2], *correct[2], *scratch[2], *combined[2];
    for (int s = 0; s < 2; s++) {
        tsr_head_shape shape = {n, h, v, s * v, vocab};
        CU_ASSERT_EQUAL_FATAL(tsr_head_plan_make(&plans[s], &shape, 32 * v * 4), TSR_OK);
        CU_ASSERT_EQUAL(plans[s].chunks, 4);
        dx[s] = kc_alloc(n * h);
        loss[s] = kc_alloc(n);
        correct[s] = kc_alloc(n);
        scratch[s] = kc_alloc(plans[s].scratch_bytes / 4);
        combined[s] = kc_alloc(2 * plans[s].chunk_rows);
        float *w = in.w + s * v * h, *dw = in.dw + s * v * h;
        tsr_head_io io = {in.x, in.targets, in.row_weight, loss[s], correct[s], dx[s],
                          scratch[s]};
        jobs[s].plan = &plans[s];
        jobs[s].io = io;
        jobs[s].st = TSR_OK;
        /* in place: the reduction's context is the head itself */
        head_init(&jobs[s].head, &plans[s], w, dw, &group, s, combined[s]);
    }
    CU_ASSERT_EQUAL(plans[0].first_pad, 512);
    CU_ASSERT_EQUAL(plans[1].first_pad, 488);
    pthread_t threads[2];
    for (int s = 0; s < 2; s++)
        pthread_create(&threads[s], NULL, run_shard, &jobs[s]);
    for (int s = 0; s < 2; s++)
        pthread_join(threads[s], NULL);
    pthread_barrier_destroy(&group.barrier);
    CU_ASSERT_EQUAL(jobs[0].st, TSR_OK);
    CU_ASSERT_EQUAL(jobs[1].st, TSR_OK);
    CU_ASSERT_EQUAL(memcmp(loss[0], loss[1], (size_t)n * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(correct[0], correct[1], (size_t)n * sizeof(float)), 0);
    expect_l2("two shards: loss", loss[0], ref.loss, n);
    CU_ASSERT_EQUAL(memcmp(correct[0], ref.correct, (size_t)n * sizeof(float)), 0);
    for (int64_t i = 0; i < n * h; i++)
        dx[0][i] += dx[1][i];
    expect_l2("two shards: dx", dx[0], ref.dx, n * h);
    expect_l2("two shards: dweight", in.dw, ref.dweight, 2 * v * h);
    for (int s = 0; s < 2; s++) {
        free(dx[s]);
        free(loss[s]);
        free(correct[s]);
        free(scratch[s]);
        free(combined[s]);
    }
    free(ref.loss);
    free(ref.correct);
    free(ref.dx);
    free(ref.dweight);
    inputs_free(&in);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_run_one_shard),
    TSR_TEST(test_run_order),
    TSR_TEST(test_run_two_shards),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("lm_head_steps", cases)};
    return tsr_test_main(suites, 1);
}
