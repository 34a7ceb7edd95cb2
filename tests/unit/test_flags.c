/*
 * test_flags.c - the flag parser and the train flag table.
 */
#include <string.h>

#include "harness.h"
#include "train_flags.h"

#define ARGS(...) ((char *[]){__VA_ARGS__})
#define COUNT(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define PARSE(cfg, world, ...)                                                               \
    tsr_train_config_from_args(cfg, COUNT(__VA_ARGS__), ARGS(__VA_ARGS__), world)

static void expect_error(tsr_status st, const char *needle)
{
    CU_ASSERT_EQUAL(st, TSR_ERR_INVALID_ARG);
    if (strstr(tsr_last_error(), needle) == NULL)
        fprintf(stderr, "\n  message was: %s\n  expected to contain: %s\n", tsr_last_error(),
                needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), needle));
}

static void test_megatron_spellings_fill_the_config(void)
{
    tsr_config cfg;
    tsr_status st = PARSE(&cfg, 8, "--tensor-model-parallel-size", "2",
                          "--pipeline-model-parallel-size=2", "--num-layers", "4",
                          "--hidden-size", "128", "--num-attention-heads", "8", "--lr", "3e-4",
                          "--train-iters", "1e3", "--sequence-parallel", "--lr-decay-style",
                          "linear", "--data-path", "synthetic:random", "--seed", "7");
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    CU_ASSERT_EQUAL(cfg.tensor_model_parallel_size, 2);
    CU_ASSERT_EQUAL(cfg.pipeline_model_parallel_size, 2);
    CU_ASSERT_EQUAL(cfg.hidden_size, 128);
    CU_ASSERT_DOUBLE_EQUAL(cfg.lr, 3e-4, 1e-12);
    CU_ASSERT_EQUAL(cfg.train_iters, 1000);
    CU_ASSERT_TRUE(cfg.sequence_parallel);
    CU_ASSERT_EQUAL(cfg.lr_decay_style, TSR_LR_LINEAR);
    CU_ASSERT_STRING_EQUAL(cfg.data_path, "synthetic:random");
    CU_ASSERT_EQUAL(cfg.seed, 7);
}

/* Megatron's --data-path takes every word up to the next flag */
static void test_data_path_takes_the_words_up_to_the_next_flag(void)
{
    tsr_config cfg;
    CU_ASSERT_EQUAL_FATAL(
        PARSE(&cfg, 1, "--data-path", "0.3", "wiki", "0.7", "books", "--seed", "3"), TSR_OK);
    CU_ASSERT_STRING_EQUAL(cfg.data_path, "0.3 wiki 0.7 books");
    CU_ASSERT_EQUAL(cfg.seed, 3);
    CU_ASSERT_EQUAL_FATAL(PARSE(&cfg, 1, "--seed", "4", "--data-path", "0.3 wiki 0.7 books"),
                          TSR_OK);
    CU_ASSERT_STRING_EQUAL(cfg.data_path, "0.3 wiki 0.7 books");
    CU_ASSERT_EQUAL_FATAL(PARSE(&cfg, 1, "--data-path=prefix", "--seed", "3"), TSR_OK);
    CU_ASSERT_STRING_EQUAL(cfg.data_path, "prefix");
    expect_error(PARSE(&cfg, 1, "--data-path", "--seed", "3"), "--data-path needs a value");
    expect_error(PARSE(&cfg, 1, "--data-path=a", "b"), "unexpected argument 'b'");
}

static void test_preset_then_explicit_flags_win(void)
{
    tsr_config cfg;
    CU_ASSERT_EQUAL_FATAL(PARSE(&cfg, 1, "--num-layers", "2", "--model", "llama"), TSR_OK);
    CU_ASSERT_EQUAL(cfg.num_layers, 2); /* explicit, though given before --model */
    CU_ASSERT_EQUAL(cfg.hidden_size, 768);
    CU_ASSERT_TRUE(cfg.disable_bias_linear);
    CU_ASSERT_EQUAL(cfg.normalization, TSR_NORM_RMSNORM);
}

/* --model is any name (the registry judges it once plugins are loaded);
 * gpt2 and llama also apply their preset shape */
static void test_model_names_and_plugin(void)
{
    tsr_config cfg;
    CU_ASSERT_EQUAL_FATAL(PARSE(&cfg, 1, "--num-layers", "2"), TSR_OK);
    CU_ASSERT_STRING_EQUAL(cfg.model_name, "gpt");
    CU_ASSERT_PTR_NULL(cfg.model_plugin);
    CU_ASSERT_EQUAL(cfg.model, TSR_PRESET_NONE);
    CU_ASSERT_EQUAL_FATAL(PARSE(&cfg, 1, "--model=gpt2"), TSR_OK);
    CU_ASSERT_STRING_EQUAL(cfg.model_name, "gpt2");
    CU_ASSERT_EQUAL(cfg.model, TSR_PRESET_GPT2);
    CU_ASSERT_EQUAL(cfg.hidden_size, 768);
    CU_ASSERT_EQUAL_FATAL(PARSE(&cfg, 1, "--model-plugin", "./libmine.so", "--model",
                                "parallel_gpt", "--hidden-size", "32"),
                          TSR_OK);
    CU_ASSERT_STRING_EQUAL(cfg.model_name, "parallel_gpt");
    CU_ASSERT_STRING_EQUAL(cfg.model_plugin, "./libmine.so");
    CU_ASSERT_EQUAL(cfg.model, TSR_PRESET_NONE);
    CU_ASSERT_EQUAL(cfg.hidden_size, 32);
    CU_ASSERT_EQUAL(cfg.num_layers, 2); /* the defaults' shape, no preset */
    expect_error(PARSE(&cfg, 1, "--model-plugin"), "--model-plugin needs a value");
    expect_error(PARSE(&cfg, 1, "--model", ""), "--model needs a non-empty value");
}

static void test_unknown_flag_suggests_the_closest(void)
{
    tsr_config cfg;
    expect_error(PARSE(&cfg, 1, "--hiden-size", "64"), "did you mean --hidden-size?");
    expect_error(PARSE(&cfg, 1, "--tensor-parallel-size", "2"),
                 "did you mean --tensor-model-parallel-size?");
    expect_error(PARSE(&cfg, 1, "--zzzzzzzzzz"), "tessera train --help");
}

static void test_values_are_checked(void)
{
    tsr_config cfg;
    expect_error(PARSE(&cfg, 1, "--num-layers"), "--num-layers needs a value");
    expect_error(PARSE(&cfg, 1, "--num-layers", "--hidden-size", "64"),
                 "--num-layers needs a value");
    expect_error(PARSE(&cfg, 1, "--num-layers", "four"), "expects a whole number, got 'four'");
    expect_error(PARSE(&cfg, 1, "--num-layers", "2.5"), "expects a whole number");
    expect_error(PARSE(&cfg, 1, "--num-layers", "0"), "out of range");
    expect_error(PARSE(&cfg, 1, "--lr", "fast"), "--lr expects a number");
    expect_error(PARSE(&cfg, 1, "--lr", "nan"), "not a finite number");
    expect_error(PARSE(&cfg, 1, "--hidden-dropout", "1.5"), "out of range");
    expect_error(PARSE(&cfg, 1, "--normalization", "BatchNorm"),
                 "choose one of: LayerNorm, RMSNorm");
    expect_error(PARSE(&cfg, 1, "--sequence-parallel=yes"), "takes no value");
    expect_error(PARSE(&cfg, 1, "stray"), "unexpected argument 'stray'");
    expect_error(PARSE(&cfg, 1, "--seed", "99999999999999999999999"), "out of range");
}

static void test_negative_value_is_a_value_not_a_flag(void)
{
    tsr_config cfg;
    expect_error(PARSE(&cfg, 1, "--seed", "-1"), "out of range");
}

static void test_validation_runs_after_parsing(void)
{
    tsr_config cfg;
    expect_error(PARSE(&cfg, 3, "--tensor-model-parallel-size", "2"),
                 "world size 3 is not divisible");
}

static void test_suggest_is_none_for_garbage(void)
{
    CU_ASSERT_PTR_NULL(tsr_flags_suggest(&tsr_train_flag_table, "--qqqqqqqqqqqqqqqqqq"));
    const tsr_flag *f = tsr_flags_suggest(&tsr_train_flag_table, "--micro-batch");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(f->name, "--micro-batch-size");
}

static void test_every_flag_is_unique_and_documented(void)
{
    for (size_t i = 0; i < tsr_train_flag_table.count; i++) {
        const tsr_flag *f = &tsr_train_flag_table.flags[i];
        CU_ASSERT_EQUAL(strncmp(f->name, "--", 2), 0);
        CU_ASSERT_TRUE(f->help != NULL && strlen(f->help) > 5);
        CU_ASSERT_PTR_EQUAL(tsr_flags_find(&tsr_train_flag_table, f->name), f);
        CU_ASSERT_TRUE(f->kind != TSR_FLAG_CHOICE || f->choices != NULL);
    }
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_megatron_spellings_fill_the_config),
    TSR_TEST(test_data_path_takes_the_words_up_to_the_next_flag),
    TSR_TEST(test_preset_then_explicit_flags_win),
    TSR_TEST(test_model_names_and_plugin),
    TSR_TEST(test_unknown_flag_suggests_the_closest),
    TSR_TEST(test_values_are_checked),
    TSR_TEST(test_negative_value_is_a_value_not_a_flag),
    TSR_TEST(test_validation_runs_after_parsing),
    TSR_TEST(test_suggest_is_none_for_garbage),
    TSR_TEST(test_every_flag_is_unique_and_documented),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("flags", cases)};
    return tsr_test_main(suites, 1);
}
