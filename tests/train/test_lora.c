/*
 * test_lora.c - LoRA's bookkeeping on one rank (the math is checked
 * against PyTorch in tests/reference, the layouts in lora_e2e.sh):
 *   - the memory plan of the GPT-2 124M shape with rank-8 adapters on all
 *     four linears: optimizer state under 1% of full fine-tuning's, no
 *     gradient for the frozen base, the base's weights still planned;
 *   - merging (tessera convert --merge-lora): with random adapters the
 *     logits after folding them into the weights (and zeroing them) equal
 *     the adapted model's within 1e-5 relative L2;
 *   - a model without adapters cannot be trained adapters-only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "data/dataset.h"
#include "harness.h"
#include "tessera/log.h"
#include "tessera/rng.h"
#include "test_net.h"
#include "train/trainer.h"

static void plan_of(const tsr_config *cfg, tsr_memory_plan *plan)
{
    tsr_test_net t;
    memset(plan, 0, sizeof *plan);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&t, cfg, cfg->vocab_size, NULL, 0), TSR_OK);
    tsr_net_plan(t.net, plan);
    tsr_trainer_plan(cfg, tsr_net_as_model(t.net).param_count, plan);
    tsr_test_net_free(&t);
}

static void test_plan_124m_rank8(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.model = TSR_PRESET_GPT2;
    tsr_config_apply_preset(&cfg);
    cfg.vocab_size = 50257;
    cfg.seq_length = 1024;
    cfg.micro_batch_size = 1;
    tsr_memory_plan full, lora;
    plan_of(&cfg, &full);
    cfg.lora_rank = 8;
    cfg.lora_alpha = 16.0;
    plan_of(&cfg, &lora);
    double ratio = (double)lora.bytes[TSR_MEM_OPTIMIZER] / (double)full.bytes[TSR_MEM_OPTIMIZER];
    printf("\n  124M shape, rank 8 on qkv,proj,fc1,fc2: optimizer state %.2f MiB vs %.2f MiB "
           "(%.3f%%), gradients %.2f vs %.2f MiB, weights %.2f vs %.2f MiB\n",
           (double)lora.bytes[TSR_MEM_OPTIMIZER] / 1048576.0,
           (double)full.bytes[TSR_MEM_OPTIMIZER] / 1048576.0, 100.0 * ratio,
           (double)lora.bytes[TSR_MEM_GRADS] / 1048576.0,
           (double)full.bytes[TSR_MEM_GRADS] / 1048576.0,
           (double)lora.bytes[TSR_MEM_PARAMS] / 1048576.0,
           (double)full.bytes[TSR_MEM_PARAMS] / 1048576.0);
    CU_ASSERT_TRUE(ratio < 0.01);
    CU_ASSERT_TRUE(ratio > 0.0);
    CU_ASSERT_TRUE(lora.bytes[TSR_MEM_GRADS] * 100 < full.bytes[TSR_MEM_GRADS]);
    /* the frozen base is still held, plus the adapters */
    CU_ASSERT_TRUE(lora.bytes[TSR_MEM_PARAMS] > full.bytes[TSR_MEM_PARAMS]);
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d / s);
}

static void test_merge_keeps_the_function(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 2;
    cfg.hidden_size = 64;
    cfg.num_attention_heads = 4;
    cfg.seq_length = 32;
    cfg.micro_batch_size = 2;
    cfg.swiglu = true; /* the gate/up halves of fc1 */
    cfg.num_query_groups = 2;
    cfg.group_query_attention = true;
    cfg.lora_rank = 4;
    cfg.lora_alpha = 12.0;
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    tsr_test_net t;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&t, &cfg, ds->vocab_size, NULL, 0), TSR_OK);
    tsr_memory_plan plan;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve(&t, &plan), TSR_OK);
    /* random up halves (zero at initialisation: the adapters would do nothing) */
    size_t count = 0, adapters = 0;
    const tsr_net_param *table = tsr_net_params(t.net, &count);
    uint64_t key = tsr_rng_key(3, "test_lora");
    for (size_t i = 0; i < count; i++) {
        if (table[i].adapter_role != TSR_ADAPTER_UP)
            continue;
        float *v = tsr_net_param_values(t.net, &table[i]);
        for (int64_t j = 0; j < table[i].rows * table[i].cols; j++)
            v[j] = 0.1f * (tsr_rng_uniform(key, (uint64_t)(adapters * 100000 + (size_t)j)) - 0.5f);
        adapters++;
    }
    CU_ASSERT_EQUAL(adapters, 8); /* four linears, two layers */
    int64_t rows = (int64_t)cfg.micro_batch_size * cfg.seq_length;
    int32_t *tokens = malloc((size_t)(rows + 1) * sizeof *tokens);
    int32_t *targets = malloc((size_t)rows * sizeof *targets);
    float *mask = malloc((size_t)rows * sizeof *mask);
    tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 0, cfg.micro_batch_size, tokens, targets, mask);
    int64_t vocab = tsr_net_get_dims(t.net)->vocab, width = 0;
    float *adapted = malloc((size_t)(rows * vocab) * sizeof *adapted);
    float *merged = malloc((size_t)(rows * vocab) * sizeof *merged);
    float *base = malloc((size_t)(rows * vocab) * sizeof *base);
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(t.net, tokens, adapted, &width), TSR_OK);
    CU_ASSERT_EQUAL(tsr_net_merge_adapters(t.net), 8);
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(t.net, tokens, merged, &width), TSR_OK);
    double err = rel_l2(merged, adapted, (size_t)(rows * vocab));
    printf("\n  merged vs adapted logits: rel L2 %.3g\n", err);
    CU_ASSERT_TRUE(err <= 1e-5);
    /* the merge changed something: the adapters were not a no-op */
    tsr_test_net b;
    tsr_config plain = cfg;
    plain.lora_rank = 0;
    plain.lora_alpha = 0.0;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&b, &plain, ds->vocab_size, NULL, 0), TSR_OK);
    tsr_memory_plan plan_b;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve(&b, &plan_b), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(b.net, tokens, base, &width), TSR_OK);
    CU_ASSERT_TRUE(rel_l2(base, adapted, (size_t)(rows * vocab)) > 1e-3);
    tsr_plan_release(&plan_b);
    tsr_test_net_free(&b);
    free(adapted);
    free(merged);
    free(base);
    free(tokens);
    free(targets);
    free(mask);
    tsr_plan_release(&plan);
    tsr_test_net_free(&t);
    tsr_dataset_close(ds);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_plan_124m_rank8),
    TSR_TEST(test_merge_keeps_the_function),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("lora", cases)};
    return tsr_test_main(suites, 1);
}
