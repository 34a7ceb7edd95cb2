/*
 * test_pp_gradients.c - pipeline (optionally x tensor) parallel gradients
 * of one training iteration against the 1-rank model on identical initial
 * weights, under mpirun.
 *
 *   test_pp_gradients PP [TP [CHUNKS]]     (np = PP x TP)
 *
 * Every rank builds the 1-rank reference in-process and its stage of the
 * parallel model, runs one iteration of 4 micro batches (the reference
 * accumulates them one by one, the pipeline through its schedule), and
 * compares every parameter's gradient block at global coordinates, summed
 * over ranks (= gathered): relative L2 <= 1e-4; and the iteration's loss:
 * relative <= 1e-5. GPT-2 style with tied embeddings and LLaMA style
 * (rope, SwiGLU, GQA, untied).
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

#define MICROBATCHES 4

static int pp_size = 2, tp_size = 1, chunks = 1;

static tsr_config model_config(bool llama, int pp, int tp, int v)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 4;
    cfg.hidden_size = 64;
    cfg.num_attention_heads = 4;
    cfg.seq_length = 32;
    cfg.micro_batch_size = 2;
    cfg.global_batch_size = 2 * MICROBATCHES;
    cfg.hidden_dropout = 0.1;
    cfg.seed = 9;
    cfg.distributed_timeout_minutes = 0.2;
    if (llama)
        tsr_reference_llama_style(&cfg, 2);
    cfg.pipeline_model_parallel_size = pp;
    cfg.tensor_model_parallel_size = tp;
    if (v > 1)
        cfg.num_layers_per_virtual_pipeline_stage = cfg.num_layers / (pp * v);
    return cfg;
}

typedef struct built {
    tsr_memory_plan plan;
    tsr_test_net model;
    tsr_net *gpt;
} built;

static void build(built *b, const tsr_config *cfg, tsr_grid *grid, int vocab)
{
    memset(b, 0, sizeof *b);
    tsr_error_clear();
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&b->model, cfg, vocab, grid, MICROBATCHES), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve_on(&b->model, grid, &b->plan), TSR_OK);
    b->gpt = b->model.net;
}

static void compare(bool llama)
{
    tsr_config ref_cfg = model_config(llama, 1, 1, 1);
    tsr_config par_cfg = model_config(llama, pp_size, tp_size, chunks);
    tsr_comm_options options;
    tsr_comm_options_from_config(&par_cfg, &options);
    tsr_comm *world = NULL;
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &options, &world), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&par_cfg, world, &grid), TSR_OK);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&ref_cfg, &ds), TSR_OK);
    built ref, par;
    build(&ref, &ref_cfg, NULL, ds->vocab_size);
    build(&par, &par_cfg, grid, ds->vocab_size);
    tsr_model rm = tsr_net_as_model(ref.gpt), pm = tsr_net_as_model(par.gpt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pm.train_iteration);

    /* reference: the same 4 micro batches, accumulated one by one */
    int mbs = ref_cfg.micro_batch_size;
    int64_t rows = (int64_t)mbs * ref_cfg.seq_length;
    int32_t *tokens = malloc((size_t)(rows + 1) * sizeof *tokens);
    int32_t *targets = malloc((size_t)rows * sizeof *targets);
    float *mask = malloc((size_t)rows * sizeof *mask);
    double ref_loss = 0.0, par_loss = 0.0;
    for (int m = 0; m < MICROBATCHES; m++) {
        tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, 16 + m * mbs, mbs, tokens, targets, mask);
        tsr_microbatch mb = {tokens, targets, mask, 16 + m * mbs, 2, NULL, NULL, NULL, NULL, NULL};
        double loss = 0.0;
        CU_ASSERT_EQUAL_FATAL(rm.train_microbatch(rm.self, &mb, 1.0f / MICROBATCHES, &loss),
                              TSR_OK);
        ref_loss += loss;
    }
    tsr_microbatch_source src = {ds, 16, mbs, 2};
    tsr_status st = pm.train_iteration(pm.self, &src, MICROBATCHES, 1.0f / MICROBATCHES,
                                       &par_loss);
    if (st != TSR_OK)
        fprintf(stderr, "train_iteration: %s\n", tsr_last_error());
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    CU_ASSERT_EQUAL_FATAL(pm.finish_grads(pm.self), TSR_OK);
    double loss_error = tsr_test_rel_error(par_loss, ref_loss);
    CU_ASSERT_TRUE(loss_error <= 1e-5);

    double worst = 0.0;
    size_t compared = 0;
    /* every rank describes every tensor, in the same order */
    double tensors = (double)pm.tensor_count;
    CU_ASSERT_DOUBLE_EQUAL(tsr_test_sum_over(world, tensors), tensors * tsr_comm_size(world), 0.5);
    for (size_t i = 0; i < pm.tensor_count; i++) {
        const tsr_tensor_desc *t = &pm.tensors[i];
        double dsum = 0.0, nsum = 0.0;
        if (t->writer && t->row_count > 0) {
            const tsr_net_param *p = tsr_test_net_find(ref.gpt, t->name);
            CU_ASSERT_PTR_NOT_NULL_FATAL(p);
            compared += tsr_test_block_compare(t, pm.grads, rm.grads, p->offset, p->cols, &dsum,
                                               &nsum);
        }
        dsum = tsr_test_sum_over(world, dsum);
        nsum = tsr_test_sum_over(world, nsum);
        double err = nsum > 0.0 ? sqrt(dsum / nsum) : sqrt(dsum);
        worst = err > worst ? err : worst;
        CU_ASSERT_TRUE(err <= 1e-4);
    }
    /* every element of the model was compared exactly once */
    double total = tsr_test_sum_over(world, (double)compared);
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(ref.gpt, &count);
    double expected = 0.0;
    for (size_t i = 0; i < count; i++) {
        bool vocab = strcmp(table[i].name, "embedding.word_embeddings.weight") == 0 ||
                     strcmp(table[i].name, "output_layer.weight") == 0;
        expected += (double)((vocab ? 14 : table[i].rows) * table[i].cols);
    }
    CU_ASSERT_DOUBLE_EQUAL(total, expected, 0.5);
    if (tsr_comm_rank(world) == 0)
        printf("\n  %s pp=%d tp=%d chunks=%d: loss %.2g, worst gradient %.2g", llama ? "llama" : "gpt2",
               pp_size, tp_size, chunks, loss_error, worst);
    free(tokens);
    free(targets);
    free(mask);
    tsr_plan_release(&ref.plan);
    tsr_plan_release(&par.plan);
    tsr_test_net_free(&ref.model);
    tsr_test_net_free(&par.model);
    tsr_dataset_close(ds);
    tsr_grid_destroy(grid);
    tsr_comm_destroy(world);
}

static void test_gpt2(void)
{
    compare(false);
}

static void test_llama(void)
{
    compare(true);
}

static const tsr_test_case cases[] = {TSR_TEST(test_gpt2), TSR_TEST(test_llama)};

int main(int argc, char **argv)
{
    if (argc > 1)
        pp_size = atoi(argv[1]);
    if (argc > 2)
        tp_size = atoi(argv[2]);
    if (argc > 3)
        chunks = atoi(argv[3]);
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("pp_gradients", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
