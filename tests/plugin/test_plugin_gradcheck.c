/*
 * test_plugin_gradcheck.c - the parallel_gpt plugin's gated parallel block
 * (examples/custom_model) against central differences.
 *
 * Loads the built plugin .so (TSR_TEST_PARALLEL_GPT_PLUGIN) the way
 * `tessera train --model-plugin` does, builds a 1-layer model on one rank
 * through the builder (sharding/net.h, as launcher/cmd_train.c does), and
 * compares d loss / d theta from one backward with
 *     (loss(theta + eps) - loss(theta - eps)) / (2 eps),  eps = 1e-3,
 * for elements of the gate and of every other parameter of the block
 * (norm, attention, MLP). No dropout. The model runs in float32; the loss
 * is a mean accumulated in double, so the difference quotient carries
 * about 1e-7 / eps = 1e-4 of rounding: the tolerance is
 *     |analytic - numeric| <= 5e-4 + 1e-2 |numeric|.
 * The gate is set to uneven values first, so a gradient that forgot the
 * gate (or used it twice) cannot pass at gate = 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "harness.h"
#include "plugin.h"
#include "registry.h"
#include "sharding/net.h"

#define EPS 1e-3
#define TOL_ABS 5e-4
#define TOL_REL 1e-2
#define VOCAB 13

typedef struct fixture {
    tsr_config cfg;
    tsr_spec_arena *arena;
    tsr_model_spec spec;
    tsr_net *net;
    tsr_memory_plan plan;
    tsr_model model;
    int32_t tokens[2 * 8], targets[2 * 8];
    float mask[2 * 8];
    tsr_microbatch mb;
} fixture;

static const tsr_model_entry *parallel_gpt(void)
{
    static const tsr_model_entry *entry;
    if (entry == NULL) {
        CU_ASSERT_EQUAL_FATAL(tsr_registry_init(), TSR_OK);
        tsr_status st = tsr_plugin_load(TSR_TEST_PARALLEL_GPT_PLUGIN);
        if (st != TSR_OK)
            fprintf(stderr, "%s\n", tsr_last_error());
        CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
        entry = tsr_registry_find("parallel_gpt");
        CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
    }
    return entry;
}

static void fixture_create(fixture *f)
{
    memset(f, 0, sizeof *f);
    tsr_config *cfg = &f->cfg;
    tsr_config_defaults(cfg);
    cfg->model_name = "parallel_gpt";
    cfg->num_layers = 1;
    cfg->hidden_size = 16;
    cfg->num_attention_heads = 2;
    cfg->ffn_hidden_size = 24;
    cfg->seq_length = 8;
    cfg->micro_batch_size = 2;
    cfg->vocab_size = VOCAB;
    cfg->make_vocab_size_divisible_by = 1;
    cfg->init_method_std = 0.2; /* gradients well above the difference quotient's noise */
    cfg->hidden_dropout = 0.0;
    cfg->attention_dropout = 0.0;
    CU_ASSERT_EQUAL_FATAL(tsr_config_validate(cfg, 1), TSR_OK);

    const tsr_model_entry *entry = parallel_gpt();
    CU_ASSERT_EQUAL_FATAL(tsr_spec_arena_create(&f->arena), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(entry->build(cfg, f->arena, &f->spec), TSR_OK);
    tsr_net_dims dims = tsr_net_dims_from_config(cfg, VOCAB, 0);
    CU_ASSERT_EQUAL_FATAL(tsr_net_dims_set_pipeline(&dims, cfg, 0, 1), TSR_OK);
    tsr_status st = tsr_net_build(&f->spec, cfg, &dims, &f->net);
    if (st != TSR_OK)
        fprintf(stderr, "%s\n", tsr_last_error());
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    tsr_net_plan(f->net, &f->plan);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&f->plan), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_carve(f->net, NULL, &f->plan), TSR_OK);
    f->model = tsr_net_as_model(f->net);

    uint32_t state = 12345u; /* a fixed micro batch */
    for (int i = 0; i < 2 * 8; i++) {
        state = state * 1664525u + 1013904223u;
        f->tokens[i] = (int32_t)((state >> 8) % VOCAB);
        state = state * 1664525u + 1013904223u;
        f->targets[i] = (int32_t)((state >> 8) % VOCAB);
        f->mask[i] = 1.0f;
    }
    f->mb = (tsr_microbatch){f->tokens, f->targets, f->mask, 0, 1, NULL, NULL, NULL, NULL, NULL};
}

static void fixture_destroy(fixture *f)
{
    tsr_net_destroy(f->net);
    tsr_plan_release(&f->plan);
    tsr_spec_arena_destroy(f->arena);
}

/* loss of the micro batch; the gradients of this one pass are left in
 * model.grads */
static double loss_and_grads(fixture *f)
{
    memset(f->model.grads, 0, f->model.param_count * sizeof(float));
    double loss = 0.0;
    CU_ASSERT_EQUAL_FATAL(f->model.train_microbatch(f->model.self, &f->mb, 1.0f, &loss), TSR_OK);
    if (f->model.finish_grads != NULL)
        CU_ASSERT_EQUAL_FATAL(f->model.finish_grads(f->model.self), TSR_OK);
    CU_ASSERT_FATAL(isfinite(loss));
    return loss;
}

static const tsr_net_param *param_named(fixture *f, const char *name)
{
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(f->net, &count);
    for (size_t i = 0; i < count; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    fprintf(stderr, "no parameter %s\n", name);
    CU_FAIL_FATAL("parameter missing");
    return NULL;
}

/* Checks elements of `name`: the one of largest analytic gradient and
 * three spread over the tensor. Returns the worst |analytic - numeric|. */
static double check_param(fixture *f, const char *name)
{
    const tsr_net_param *p = param_named(f, name);
    size_t n = (size_t)(p->local_rows * p->local_cols);
    float *theta = f->model.params + p->offset;
    loss_and_grads(f);
    float *analytic_all = malloc(n * sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(analytic_all);
    memcpy(analytic_all, f->model.grads + p->offset, n * sizeof(float));
    size_t picks[4] = {0, n / 3, (2 * n) / 3, n - 1};
    for (size_t i = 1; i < n; i++)
        if (fabsf(analytic_all[i]) > fabsf(analytic_all[picks[0]]))
            picks[0] = i;
    CU_ASSERT(fabsf(analytic_all[picks[0]]) > 1e-3f); /* the check is not vacuous */
    double worst = 0.0;
    for (int k = 0; k < 4; k++) {
        size_t i = picks[k];
        float saved = theta[i];
        theta[i] = saved + (float)EPS;
        double plus = loss_and_grads(f);
        theta[i] = saved - (float)EPS;
        double minus = loss_and_grads(f);
        theta[i] = saved;
        /* the step actually taken in float32 */
        double step = (double)(saved + (float)EPS) - (double)(saved - (float)EPS);
        double numeric = (plus - minus) / step, analytic = analytic_all[i];
        double err = fabs(analytic - numeric);
        bool ok = err <= TOL_ABS + TOL_REL * fabs(numeric);
        if (!ok)
            fprintf(stderr, "%s[%zu]: analytic %.6g, central difference %.6g\n", name, i,
                    analytic, numeric);
        CU_ASSERT(ok);
        worst = err > worst ? err : worst;
    }
    free(analytic_all);
    return worst;
}

static void set_uneven_gate(fixture *f)
{
    const tsr_net_param *gate = param_named(f, "decoder.layers.0.gate");
    CU_ASSERT_EQUAL(gate->rows, 16);
    CU_ASSERT_EQUAL(gate->split, TSR_PARAM_SPLIT_NONE);
    CU_ASSERT_TRUE((gate->flags & TSR_PARAM_SP_PARTIAL) != 0);
    CU_ASSERT_EQUAL(gate->init, TSR_INIT_CONSTANT);
    float *g = f->model.params + gate->offset;
    for (int j = 0; j < 16; j++) {
        CU_ASSERT_EQUAL(g[j], 1.0f); /* as initialised */
        g[j] = 0.4f + 0.1f * (float)(j % 7) - (j % 3 == 0 ? 0.9f : 0.0f);
    }
}

static void test_gate_gradient_matches_central_differences(void)
{
    fixture f;
    fixture_create(&f);
    set_uneven_gate(&f);
    double worst = check_param(&f, "decoder.layers.0.gate");
    printf("\n    gate: worst |analytic - numeric| %.3g ", worst);
    fixture_destroy(&f);
}

static void test_block_gradients_match_central_differences(void)
{
    static const char *const names[] = {
        "decoder.layers.0.input_layernorm.weight",  "decoder.layers.0.input_layernorm.bias",
        "decoder.layers.0.self_attention.linear_qkv.weight",
        "decoder.layers.0.self_attention.linear_qkv.bias",
        "decoder.layers.0.self_attention.linear_proj.weight",
        "decoder.layers.0.self_attention.linear_proj.bias",
        "decoder.layers.0.mlp.linear_fc1.weight",   "decoder.layers.0.mlp.linear_fc1.bias",
        "decoder.layers.0.mlp.linear_fc2.weight",   "decoder.layers.0.mlp.linear_fc2.bias",
        "embedding.word_embeddings.weight"};
    fixture f;
    fixture_create(&f);
    set_uneven_gate(&f);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        double worst = check_param(&f, names[i]);
        printf("\n    %s: worst |analytic - numeric| %.3g ", names[i], worst);
    }
    fixture_destroy(&f);
}

/* One norm per parallel block: no pre_mlp_layernorm, every name unique. */
static void test_block_parameter_names(void)
{
    fixture f;
    fixture_create(&f);
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(f.net, &count);
    for (size_t i = 0; i < count; i++) {
        CU_ASSERT_PTR_NULL(strstr(table[i].name, "pre_mlp_layernorm"));
        for (size_t j = i + 1; j < count; j++)
            CU_ASSERT_TRUE(table[i].tied_copy || table[j].tied_copy ||
                           strcmp(table[i].name, table[j].name) != 0);
    }
    fixture_destroy(&f);
}

int main(void)
{
    static const tsr_test_case cases[] = {
        TSR_TEST(test_block_parameter_names),
        TSR_TEST(test_gate_gradient_matches_central_differences),
        TSR_TEST(test_block_gradients_match_central_differences),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("plugin_gradcheck", cases)};
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
