/*
 * test_reference.c - the single-rank model against PyTorch.
 *
 * Fixtures (tests/reference/fixtures/<preset>.h5) were written by
 * make_fixtures.py from a float64 PyTorch model holding tessera's initial
 * weights. Tolerances:
 *   initial weights      bitwise equal (the RNG and the parameter names)
 *   logits               relative L2 error <= 1e-5
 *   loss                 relative error <= 1e-5
 *   each gradient        relative L2 error <= 1e-4 (step 1, 2 micro batches)
 *   each of 10 losses    relative error <= 1e-4 (AdamW, warmup+cosine, clip)
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "data/dataset.h"
#include "test_net.h"
#include "harness.h"
#include "tessera/log.h"
#include "reference_configs.h"
#include "train/trainer.h"

#ifndef TSR_FIXTURE_DIR
#error "TSR_FIXTURE_DIR must name the fixtures folder"
#endif

typedef struct run {
    tsr_config cfg;
    tsr_dataset *ds;
    tsr_net_dims dims;
    tsr_test_net model;
    tsr_memory_plan plan;
    tsr_net *gpt;
    hid_t fixture;
} run;

static int open_run(run *r, const char *preset)
{
    memset(r, 0, sizeof *r);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.h5", TSR_FIXTURE_DIR, preset);
    r->fixture = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->fixture < 0 || tsr_reference_config(preset, &r->cfg) != TSR_OK ||
        tsr_dataset_open(&r->cfg, &r->ds) != TSR_OK)
        return -1;
    if (tsr_test_net_build(&r->model, &r->cfg, r->ds->vocab_size, NULL, 0) != TSR_OK)
        return -1;
    r->gpt = r->model.net;
    r->dims = *tsr_net_get_dims(r->gpt);
    tsr_net_plan(r->gpt, &r->plan);
    tsr_trainer_plan(&r->cfg, r->plan.bytes[TSR_MEM_PARAMS] / sizeof(float), &r->plan);
    if (tsr_plan_allocate(&r->plan) != TSR_OK ||
        tsr_net_carve(r->gpt, NULL, &r->plan) != TSR_OK)
        return -1;
    return 0;
}

static void close_run(run *r)
{
    tsr_plan_release(&r->plan);
    tsr_test_net_free(&r->model);
    tsr_dataset_close(r->ds);
    if (r->fixture >= 0)
        H5Fclose(r->fixture);
}

/* Reads a dataset as doubles; returns element count (0 on failure). */
static size_t read_doubles(hid_t file, const char *name, double **out)
{
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    if (set < 0)
        return 0;
    hid_t space = H5Dget_space(set);
    size_t n = (size_t)H5Sget_simple_extent_npoints(space);
    *out = malloc(n * sizeof **out);
    H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out);
    H5Sclose(space);
    H5Dclose(set);
    return n;
}

static double read_attr(hid_t file, const char *name)
{
    double v = NAN;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    H5Aread(attr, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(attr);
    return v;
}

static double rel_l2(const float *a, const double *b, size_t n)
{
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        diff += d * d;
        norm += b[i] * b[i];
    }
    return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

/* The initial weights are tessera's own, except the adapters' up halves
 * (B, zero at initialisation), which the LoRA fixtures replace by random
 * ones so that every adapter gradient is non-zero: those are loaded. */
static void check_initial_weights(run *r)
{
    size_t count = 0, mismatched = 0;
    const tsr_net_param *table = tsr_net_params(r->gpt, &count);
    for (size_t i = 0; i < count; i++) {
        char name[160];
        double *expected = NULL;
        snprintf(name, sizeof name, "weights/%s", table[i].name);
        size_t n = read_doubles(r->fixture, name, &expected);
        CU_ASSERT_EQUAL_FATAL(n, (size_t)(table[i].rows * table[i].cols));
        float *mine = tsr_net_param_values(r->gpt, &table[i]);
        for (size_t j = 0; j < n; j++) {
            if (table[i].adapter_role == TSR_ADAPTER_UP)
                mine[j] = (float)expected[j];
            mismatched += (double)mine[j] != expected[j];
        }
        free(expected);
    }
    CU_ASSERT_EQUAL(mismatched, 0);
}

static void batch_of(hid_t fixture, int step, int micro, int64_t rows, int32_t *tokens,
                     int32_t *targets, float *mask)
{
    double *all = NULL;
    const char *names[3] = {"tokens", "targets", "mask"};
    for (int k = 0; k < 3; k++) {
        read_doubles(fixture, names[k], &all);
        const double *src = all + ((int64_t)step * 2 + micro) * rows;
        for (int64_t i = 0; i < rows; i++) {
            if (k == 0)
                tokens[i] = (int32_t)src[i];
            else if (k == 1)
                targets[i] = (int32_t)src[i];
            else
                mask[i] = (float)src[i];
        }
        free(all);
    }
}

static void check_batches_match_dataset(run *r, const int32_t *tokens, const int32_t *targets,
                                        int64_t rows)
{
    int32_t *t = malloc((size_t)(rows + 1) * sizeof *t), *y = malloc((size_t)rows * sizeof *y);
    float *m = malloc((size_t)rows * sizeof *m);
    tsr_dataset_batch(r->ds, TSR_SPLIT_TRAIN, 0, r->cfg.micro_batch_size, t, y, m);
    CU_ASSERT_EQUAL(memcmp(t, tokens, (size_t)rows * sizeof *t), 0);
    CU_ASSERT_EQUAL(memcmp(y, targets, (size_t)rows * sizeof *y), 0);
    free(t);
    free(y);
    free(m);
}

static void check_preset(const char *preset)
{
    run r;
    CU_ASSERT_EQUAL_FATAL(open_run(&r, preset), 0);
    check_initial_weights(&r);

    int64_t rows = (int64_t)r.cfg.micro_batch_size * r.cfg.seq_length;
    int32_t *tokens = malloc(2 * (size_t)rows * sizeof *tokens);
    int32_t *targets = malloc(2 * (size_t)rows * sizeof *targets);
    float *mask = malloc(2 * (size_t)rows * sizeof *mask);
    batch_of(r.fixture, 0, 0, rows, tokens, targets, mask);
    batch_of(r.fixture, 0, 1, rows, tokens + rows, targets + rows, mask + rows);
    check_batches_match_dataset(&r, tokens, targets, rows);

    /* logits and loss of micro batch 0 */
    float *logits = malloc((size_t)(rows * r.dims.vocab) * sizeof *logits);
    int64_t width = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(r.gpt, tokens, logits, &width), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(width, r.dims.vocab);
    double *expected = NULL;
    size_t n = read_doubles(r.fixture, "logits", &expected);
    CU_ASSERT_EQUAL_FATAL(n, (size_t)(rows * r.dims.vocab));
    double logits_error = rel_l2(logits, expected, n);
    printf("\n  %s: logits rel L2 error %.3g", preset, logits_error);
    CU_ASSERT_TRUE(logits_error <= 1e-5);
    free(expected);
    free(logits);

    /* gradients of step 1 */
    tsr_model model = tsr_net_as_model(r.gpt);
    memset(model.grads, 0, model.param_count * sizeof(float));
    double loss0 = 0.0, loss1 = 0.0;
    tsr_microbatch mb0 = {tokens, targets, mask, 0, 1, NULL, NULL, NULL, NULL, NULL};
    tsr_microbatch mb1 = {tokens + rows, targets + rows, mask + rows, 4, 1, NULL, NULL, NULL, NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(model.train_microbatch(model.self, &mb0, 0.5f, &loss0), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(model.train_microbatch(model.self, &mb1, 0.5f, &loss1), TSR_OK);
    double loss_error = tsr_test_rel_error(loss0, read_attr(r.fixture, "loss"));
    printf(", loss rel error %.3g", loss_error);
    CU_ASSERT_TRUE(loss_error <= 1e-5);

    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(r.gpt, &count);
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        char name[160];
        if (table[i].frozen) /* the LoRA base: no gradient */
            continue;
        snprintf(name, sizeof name, "grads/%s", table[i].name);
        n = read_doubles(r.fixture, name, &expected);
        CU_ASSERT_EQUAL_FATAL(n, (size_t)(table[i].rows * table[i].cols));
        double err = rel_l2(model.grads + table[i].offset, expected, n);
        if (err > worst)
            worst = err;
        if (err > 1e-4)
            printf("\n  %s: gradient of %s off by %.3g", preset, table[i].name, err);
        CU_ASSERT_TRUE(err <= 1e-4);
        free(expected);
    }
    printf(", worst gradient rel L2 error %.3g", worst);

    /* 10 AdamW steps through the trainer, from fresh weights */
    close_run(&r);
    CU_ASSERT_EQUAL_FATAL(open_run(&r, preset), 0);
    check_initial_weights(&r);
    tsr_trainer trainer;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_init(&trainer, &r.cfg, r.ds, tsr_net_as_model(r.gpt), NULL,
                                           0.0, &r.plan),
                          TSR_OK);
    n = read_doubles(r.fixture, "losses", &expected);
    CU_ASSERT_EQUAL_FATAL(n, TSR_REFERENCE_STEPS);
    double worst_loss = 0.0;
    for (int step = 0; step < TSR_REFERENCE_STEPS; step++) {
        r.cfg.train_iters = step + 1; /* run one more iteration */
        CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&trainer, NULL), TSR_OK);
        double err = tsr_test_rel_error(trainer.last_loss, expected[step]);
        if (err > worst_loss)
            worst_loss = err;
        CU_ASSERT_TRUE(err <= 1e-4);
    }
    printf(", worst of 10 losses rel error %.3g (%.4f -> %.4f)\n", worst_loss, expected[0],
           expected[TSR_REFERENCE_STEPS - 1]);
    free(expected);
    free(tokens);
    free(targets);
    free(mask);
    close_run(&r);
}

static void test_gpt2_matches_pytorch(void)
{
    check_preset("gpt2");
}

static void test_llama_matches_pytorch(void)
{
    check_preset("llama");
}

/* LoRA: the same math with adapters on a frozen base (make_fixtures.py) */
static void test_gpt2_lora_matches_pytorch(void)
{
    check_preset("gpt2_lora");
}

static void test_llama_lora_matches_pytorch(void)
{
    check_preset("llama_lora");
}

/* MoE: 8 experts, top-2, a shared expert, load-balancing and z-losses */
static void test_moe_matches_pytorch(void)
{
    check_preset("moe");
}

/* the same with capacity factor 1.0: assignments dropped */
static void test_moe_capacity_matches_pytorch(void)
{
    check_preset("moe_capacity");
}

/* top-k of the softmax, the balancing loss per sequence, drops by position */
static void test_moe_variants_match_pytorch(void)
{
    check_preset("moe_variants");
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_gpt2_matches_pytorch),
    TSR_TEST(test_llama_matches_pytorch),
    TSR_TEST(test_gpt2_lora_matches_pytorch),
    TSR_TEST(test_llama_lora_matches_pytorch),
    TSR_TEST(test_moe_matches_pytorch),
    TSR_TEST(test_moe_capacity_matches_pytorch),
    TSR_TEST(test_moe_variants_match_pytorch),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN); /* the trainer's log lines are not the test's */
    const tsr_test_suite suites[] = {TSR_SUITE("reference", cases)};
    return tsr_test_main(suites, 1);
}
