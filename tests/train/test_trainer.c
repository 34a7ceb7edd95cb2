/*
 * test_trainer.c - the training loop's own logic, on a model whose loss
 * and gradients are known in closed form: loss = mean_i 0.5 (p_i - c)^2,
 * gradient (p_i - c) / n, with c the micro batch's first sample index.
 * A model can be told to return NaN at chosen iterations.
 */
#include <math.h>
#include <string.h>

#include "arena.h"
#include "data/dataset.h"
#include "harness.h"
#include "tessera/log.h"
#include "train/trainer.h"

#define N_PARAMS 8

typedef struct quadratic {
    float params[N_PARAMS], grads[N_PARAMS];
    tsr_param_span spans[2];
    int64_t nan_from, nan_to; /* iterations that return NaN */
    int calls, eval_calls;
    double scale_seen;
} quadratic;

static tsr_status quad_train(void *self, const tsr_microbatch *mb, float scale, double *loss)
{
    quadratic *q = self;
    double c = (double)mb->first_sample, sum = 0.0;
    for (int i = 0; i < N_PARAMS; i++) {
        double diff = q->params[i] - c;
        sum += 0.5 * diff * diff;
        q->grads[i] += (float)(scale * diff / N_PARAMS);
    }
    q->calls++;
    q->scale_seen = scale;
    *loss = sum / N_PARAMS;
    if (mb->iteration >= q->nan_from && mb->iteration <= q->nan_to)
        *loss = NAN;
    return TSR_OK;
}

static tsr_status quad_eval(void *self, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    quadratic *q = self;
    q->eval_calls++;
    (void)mb;
    memset(out, 0, sizeof *out);
    return TSR_OK;
}

typedef struct fixture {
    tsr_config cfg;
    tsr_dataset *ds;
    tsr_memory_plan plan;
    quadratic q;
    tsr_trainer tr;
} fixture;

static void setup(fixture *f, int global_batch)
{
    memset(f, 0, sizeof *f);
    tsr_config_defaults(&f->cfg);
    f->cfg.micro_batch_size = 1;
    f->cfg.global_batch_size = global_batch;
    f->cfg.seq_length = 16;
    f->cfg.lr = 0.1;
    f->cfg.lr_decay_style = TSR_LR_CONSTANT;
    f->cfg.weight_decay = 0.0;
    f->cfg.clip_grad = 0.0;
    f->cfg.train_iters = 1;
    f->cfg.data_path = "synthetic:random";
    f->cfg.max_nan_iters_in_a_row = 3;
    f->q.nan_from = f->q.nan_to = -1;
    f->q.spans[0] = (tsr_param_span){0, 4, true, false};
    f->q.spans[1] = (tsr_param_span){4, 4, false, false};
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&f->cfg, &f->ds), TSR_OK);
    tsr_trainer_plan(&f->cfg, N_PARAMS, &f->plan);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&f->plan), TSR_OK);
    tsr_model m;
    memset(&m, 0, sizeof m);
    m.self = &f->q;
    m.params = f->q.params;
    m.grads = f->q.grads;
    m.param_count = N_PARAMS;
    m.spans = f->q.spans;
    m.span_count = 2;
    m.train_microbatch = quad_train;
    m.eval_microbatch = quad_eval;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_init(&f->tr, &f->cfg, f->ds, m, NULL, 0.0, &f->plan),
                          TSR_OK);
}

static void teardown(fixture *f)
{
    tsr_plan_release(&f->plan);
    tsr_dataset_close(f->ds);
}

static void test_first_adam_step_moves_each_param_by_lr(void)
{
    fixture f;
    setup(&f, 1);
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = (float)(i + 1); /* c = 0 for sample 0: all gradients positive */
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    /* bias-corrected Adam's first step is lr * g / (|g| + eps) = lr */
    for (int i = 0; i < N_PARAMS; i++)
        CU_ASSERT_DOUBLE_EQUAL(f.q.params[i], (float)(i + 1) - 0.1f, 1e-5);
    CU_ASSERT_EQUAL(f.tr.adam_step, 1);
    CU_ASSERT_EQUAL(f.tr.consumed_samples, 1);
    teardown(&f);
}

static void test_micro_batches_accumulate_with_scale(void)
{
    fixture f;
    setup(&f, 4); /* 4 micro batches of 1: samples 0..3, c = 0..3 */
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = 10.0f;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(f.q.calls, 4);
    CU_ASSERT_DOUBLE_EQUAL(f.q.scale_seen, 0.25, 1e-12);
    /* grad = mean over micro batches of (10 - c)/8 = (10 - 1.5)/8 */
    CU_ASSERT_DOUBLE_EQUAL(f.q.grads[0], 8.5 / 8.0, 1e-6);
    /* logged loss: mean over micro batches of 0.5 (10 - c)^2 */
    CU_ASSERT_DOUBLE_EQUAL(f.tr.last_loss, (50.0 + 40.5 + 32.0 + 24.5) / 4.0, 1e-9);
    CU_ASSERT_EQUAL(f.tr.consumed_samples, 4);
    teardown(&f);
}

static void test_weight_decay_only_on_decayed_spans(void)
{
    fixture f;
    setup(&f, 1);
    f.cfg.weight_decay = 0.5;
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = 0.0f; /* c = 0: zero gradient, only decay could move them */
    f.q.params[0] = f.q.params[4] = 0.0f;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(f.q.params[0], 0.0f);
    teardown(&f);
    setup(&f, 1);
    f.cfg.weight_decay = 0.5;
    f.cfg.lr = 1e-3;
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = 4.0f;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    /* decayed: 4 - lr*(1 + 0.5*4); not decayed: 4 - lr*1 */
    CU_ASSERT_DOUBLE_EQUAL(f.q.params[0], 4.0 - 1e-3 * 3.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(f.q.params[5], 4.0 - 1e-3 * 1.0, 1e-6);
    teardown(&f);
}

static void test_clipping_scales_the_gradient(void)
{
    fixture f;
    setup(&f, 1);
    f.cfg.clip_grad = 0.5;
    f.cfg.lr = 1.0;
    f.cfg.adam_beta1 = 0.0; /* makes the second step's size depend on the clipped gradient */
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = 8.0f; /* grad 1 each, norm sqrt(8) */
    f.cfg.train_iters = 1;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    /* Adam normalises away a uniform scale, so check the second moment:
     * v = (1 - beta2) * (clip/norm * g)^2 */
    double coeff = 0.5 / (sqrt(8.0) + 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(f.tr.adam_v[0], (1.0 - 0.999) * coeff * coeff, 1e-9);
    teardown(&f);
}

static void test_nan_iterations_are_skipped_then_stop(void)
{
    fixture f;
    setup(&f, 1);
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = 5.0f;
    f.q.nan_from = 2;
    f.q.nan_to = 2;
    f.cfg.train_iters = 3;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(f.tr.nan_iterations_total, 1);
    CU_ASSERT_EQUAL(f.tr.adam_step, 2); /* iteration 2 did not step */
    CU_ASSERT_EQUAL(f.tr.consumed_samples, 3);
    teardown(&f);

    setup(&f, 1);
    f.q.nan_from = 2;
    f.q.nan_to = 100;
    f.cfg.train_iters = 50;
    CU_ASSERT_EQUAL(tsr_trainer_run(&f.tr, NULL), TSR_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "3 iterations in a row"));
    CU_ASSERT_EQUAL(f.tr.iteration, 4);
    teardown(&f);
}

/* What the save hook saw: the iteration of each call and the state then. */
typedef struct saves {
    int count;
    int64_t iteration[8], consumed[8], adam_step[8];
    float param0[8], moment0[8];
} saves;

static tsr_status record_save(void *ctx, const tsr_trainer *tr)
{
    saves *s = ctx;
    if (s->count < 8) {
        s->iteration[s->count] = tr->iteration;
        s->consumed[s->count] = tr->consumed_samples;
        s->adam_step[s->count] = tr->adam_step;
        s->param0[s->count] = tr->model.params[0];
        s->moment0[s->count] = tr->adam_m[0] + tr->adam_v[0];
    }
    s->count++;
    return TSR_OK;
}

static void test_train_iters_0_saves_the_initial_state_once(void)
{
    fixture f;
    saves s;
    memset(&s, 0, sizeof s);
    setup(&f, 1);
    f.tr.hooks.save = record_save;
    f.tr.hooks.save_ctx = &s;
    f.cfg.train_iters = 0;
    for (int i = 0; i < N_PARAMS; i++)
        f.q.params[i] = 3.0f;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(s.count, 1);
    CU_ASSERT_EQUAL(s.iteration[0], 0);
    CU_ASSERT_EQUAL(s.consumed[0], 0);
    CU_ASSERT_EQUAL(s.adam_step[0], 0);
    CU_ASSERT_EQUAL(s.param0[0], 3.0f);
    CU_ASSERT_EQUAL(s.moment0[0], 0.0f);
    CU_ASSERT_EQUAL(f.q.calls, 0);
    teardown(&f);

    /* with iterations to train, the save comes every --save-interval and
     * at the end, never at iteration 0 */
    memset(&s, 0, sizeof s);
    setup(&f, 1);
    f.tr.hooks.save = record_save;
    f.tr.hooks.save_ctx = &s;
    f.cfg.train_iters = 3;
    f.cfg.save_interval = 2;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(s.count, 2);
    CU_ASSERT_EQUAL(s.iteration[0], 2);
    CU_ASSERT_EQUAL(s.iteration[1], 3);
    teardown(&f);
}

static void test_eval_interval_0_never_evaluates(void)
{
    fixture f;
    setup(&f, 1);
    f.cfg.train_iters = 3;
    f.cfg.eval_interval = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(f.q.eval_calls, 0);
    teardown(&f);

    /* every 2 iterations and at the last one: iterations 2 and 3, each
     * --eval-iters batches */
    setup(&f, 1);
    f.cfg.train_iters = 3;
    f.cfg.eval_interval = 2;
    f.cfg.eval_iters = 4;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&f.tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(f.q.eval_calls, 2 * 4);
    teardown(&f);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_first_adam_step_moves_each_param_by_lr),
    TSR_TEST(test_micro_batches_accumulate_with_scale),
    TSR_TEST(test_weight_decay_only_on_decayed_spans),
    TSR_TEST(test_clipping_scales_the_gradient),
    TSR_TEST(test_nan_iterations_are_skipped_then_stop),
    TSR_TEST(test_train_iters_0_saves_the_initial_state_once),
    TSR_TEST(test_eval_interval_0_never_evaluates),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("trainer", cases)};
    return tsr_test_main(suites, 1);
}
