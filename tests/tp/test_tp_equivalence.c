/*
 * test_tp_equivalence.c - tensor (and sequence) parallel GPT against the
 * 1-rank GPT on identical initial weights, under mpirun (np = TP size).
 *
 * Every rank builds both models: the 1-rank model in-process as the
 * reference, and its shard of the TP model. For one micro batch:
 *   logits (this rank's vocabulary slice)   relative L2 over all ranks <= 1e-5
 *   loss                                    relative error <= 1e-5
 *   every parameter's gradient, compared block by block at global
 *   coordinates and summed over ranks (= gathered to global shape)
 *                                           relative L2 <= 1e-4
 * for a GPT-2-style and a LLaMA-style (rope, SwiGLU, GQA, untied) model,
 * with sequence parallelism off and on, with dropout.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "collectives/comm.h"
#include "data/dataset.h"
#include "test_net.h"
#include "block_compare.h"
#include "harness.h"
#include "reference_configs.h"
#include "sharding/grid.h"
#include "tessera/log.h"

typedef struct built {
    tsr_memory_plan plan;
    tsr_net_dims dims;
    tsr_test_net model;
    tsr_net *gpt;
} built;

static tsr_config model_config(bool llama, bool sp, int tp)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 2;
    cfg.hidden_size = 64;
    cfg.num_attention_heads = 8;
    cfg.seq_length = 32;
    cfg.micro_batch_size = 2;
    cfg.hidden_dropout = 0.1;
    cfg.attention_dropout = 0.1;
    cfg.seed = 5;
    if (llama)
        tsr_reference_llama_style(&cfg, 4);
    cfg.tensor_model_parallel_size = tp;
    cfg.sequence_parallel = sp && tp > 1;
    return cfg;
}

static void build(built *b, const tsr_config *cfg, tsr_grid *grid, int vocab)
{
    memset(b, 0, sizeof *b);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&b->model, cfg, vocab, grid, 0), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve_on(&b->model, grid, &b->plan), TSR_OK);
    b->gpt = b->model.net;
    b->dims = *tsr_net_get_dims(b->gpt);
}

static void compare(bool llama, bool sp)
{
    int np = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    tsr_config ref_cfg = model_config(llama, sp, 1), tp_cfg = model_config(llama, sp, np);
    tsr_comm_options options;
    tsr_comm_options_from_config(&tp_cfg, &options);
    tsr_comm *world = NULL;
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &options, &world), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&tp_cfg, world, &grid), TSR_OK);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&ref_cfg, &ds), TSR_OK);
    built ref, tp;
    build(&ref, &ref_cfg, NULL, ds->vocab_size);
    build(&tp, &tp_cfg, grid, ds->vocab_size);

    int64_t rows = (int64_t)ref_cfg.micro_batch_size * ref_cfg.seq_length;
    int32_t *tokens = malloc((size_t)(rows + 1) * sizeof *tokens);
    int32_t *targets = malloc((size_t)rows * sizeof *targets);
    float *mask = malloc((size_t)rows * sizeof *mask);
    tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 6, ref_cfg.micro_batch_size, tokens, targets, mask);

    /* logits: this rank's slice against the same columns of the reference */
    int64_t vocab = ref.dims.vocab, width = 0, ref_width = 0;
    float *ref_logits = malloc((size_t)(rows * vocab) * sizeof(float));
    float *tp_logits = malloc((size_t)(rows * vocab) * sizeof(float));
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(ref.gpt, tokens, ref_logits, &ref_width), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(tp.gpt, tokens, tp_logits, &width), TSR_OK);
    double diff = 0.0, norm = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < width; j++) {
            double e = ref_logits[r * vocab + tp.dims.vocab_start + j];
            double d = tp_logits[r * width + j] - e;
            diff += d * d;
            norm += e * e;
        }
    diff = tsr_test_sum_over(world, diff);
    norm = tsr_test_sum_over(world, norm);
    CU_ASSERT_TRUE(tsr_test_sum_over(world, (double)width) == (double)vocab);
    double logits_error = sqrt(diff / norm);
    CU_ASSERT_TRUE(logits_error <= 1e-5);

    /* loss and gradients of one training micro batch (dropout on) */
    tsr_model ref_model = tsr_net_as_model(ref.gpt), tp_model = tsr_net_as_model(tp.gpt);
    tsr_microbatch mb = {tokens, targets, mask, 6, 3, NULL, NULL, NULL, NULL, NULL};
    double ref_loss = 0.0, tp_loss = 0.0;
    CU_ASSERT_EQUAL_FATAL(ref_model.train_microbatch(ref_model.self, &mb, 1.0f, &ref_loss),
                          TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tp_model.train_microbatch(tp_model.self, &mb, 1.0f, &tp_loss), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tp_model.finish_grads(tp_model.self), TSR_OK);
    double loss_error = tsr_test_rel_error(tp_loss, ref_loss);
    CU_ASSERT_TRUE(loss_error <= 1e-5);

    double worst = 0.0;
    const char *worst_name = "";
    for (size_t i = 0; i < tp_model.tensor_count; i++) {
        const tsr_tensor_desc *t = &tp_model.tensors[i];
        const tsr_net_param *p = tsr_test_net_find(ref.gpt, t->name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        double dsum = 0.0, nsum = 0.0;
        if (t->writer)
            tsr_test_block_compare(t, tp_model.grads, ref_model.grads, p->offset, p->cols, &dsum,
                                   &nsum);
        /* a SwiGLU fc1 is two blocks: fold the next block of the same name in */
        while (i + 1 < tp_model.tensor_count && strcmp(tp_model.tensors[i + 1].name, t->name) == 0) {
            const tsr_tensor_desc *u = &tp_model.tensors[++i];
            tsr_test_block_compare(u, tp_model.grads, ref_model.grads, p->offset, p->cols, &dsum,
                                   &nsum);
        }
        dsum = tsr_test_sum_over(world, dsum);
        nsum = tsr_test_sum_over(world, nsum);
        double err = nsum > 0.0 ? sqrt(dsum / nsum) : sqrt(dsum);
        if (err > worst) {
            worst = err;
            worst_name = t->name;
        }
        CU_ASSERT_TRUE(err <= 1e-4);
    }
    if (tsr_comm_rank(world) == 0)
        printf("\n  %s tp=%d%s: logits %.2g, loss %.2g, worst gradient %.2g (%s)", llama ? "llama" : "gpt2",
               np, sp ? " sp" : "", logits_error, loss_error, worst, worst_name);
    free(tokens);
    free(targets);
    free(mask);
    free(ref_logits);
    free(tp_logits);
    tsr_plan_release(&ref.plan);
    tsr_plan_release(&tp.plan);
    tsr_test_net_free(&ref.model);
    tsr_test_net_free(&tp.model);
    tsr_dataset_close(ds);
    tsr_grid_destroy(grid);
    tsr_comm_destroy(world);
}

static void test_gpt2_tp(void)
{
    compare(false, false);
}

static void test_gpt2_tp_sp(void)
{
    compare(false, true);
}

static void test_llama_tp(void)
{
    compare(true, false);
}

static void test_llama_tp_sp(void)
{
    compare(true, true);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_gpt2_tp),
    TSR_TEST(test_gpt2_tp_sp),
    TSR_TEST(test_llama_tp),
    TSR_TEST(test_llama_tp_sp),
};

int main(int argc, char **argv)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("tp_equivalence", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
