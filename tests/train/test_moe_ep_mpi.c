/*
 * test_moe_ep_mpi.c - MoE layouts against the 1-rank MoE model on
 * identical initial weights, under mpirun (np 2, 4, 8): EP over every
 * rank, EP 2 x DP 2, TP 2 with SP (x EP), experts whole on each tp rank or
 * cut over tp, PP 2 x EP 2, TP 2 x PP 2 x EP 2 (np 8), and the allgather
 * dispatcher; dropless and with capacity factor 1.0.
 *
 * Every rank builds both models. Data-parallel rank r's share of an
 * iteration is micro batches r M .. r M + M - 1 (M = 2, through the
 * pipeline's schedule under PP); the reference runs every rank's, each
 * with weight 1/(dp M). After backward the parallel model's gradients are
 * summed as training sums them (dense ones over dp, the expert region
 * over expert-dp), then compared at global coordinates, each block
 * counted once (dense blocks on dp rank 0, experts on expert-dp rank 0)
 * and summed over ranks:
 *   every rank's loss and the balancing loss   relative <= 1e-5
 *   every parameter's gradient                 relative L2 <= 1e-4
 *   every element of the model compared exactly once
 * for a LLaMA-style MoE model (8 experts, top-2, a shared expert, aux and
 * z-losses, grouped queries, dropout).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "block_compare.h"
#include "collectives/comm.h"
#include "data/dataset.h"
#include "harness.h"
#include "reference_configs.h"
#include "sharding/grid.h"
#include "tessera/log.h"
#include "test_net.h"

typedef struct built {
    tsr_memory_plan plan;
    tsr_test_net model;
    tsr_net *net;
} built;

/* A layout to compare with one rank. */
typedef struct layout {
    int ep, tp, pp;
    double capacity;
    int dispatcher; /* 0 alltoall, 1 allgather */
    bool cut;       /* experts cut over tp */
} layout;

#define MICROBATCHES 2 /* per data-parallel rank */

static tsr_config moe_config(const layout *l, int dp)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 2;
    cfg.hidden_size = 64;
    cfg.num_attention_heads = 8;
    cfg.seq_length = 32;
    cfg.micro_batch_size = 2;
    cfg.global_batch_size = cfg.micro_batch_size * MICROBATCHES * dp;
    cfg.hidden_dropout = 0.1;
    cfg.attention_dropout = 0.1;
    cfg.seed = 9;
    tsr_reference_llama_style(&cfg, 4);
    cfg.num_experts = 8;
    cfg.moe_router_topk = 2;
    cfg.moe_ffn_hidden_size = 48;
    cfg.moe_shared_expert_intermediate_size = 32;
    cfg.moe_aux_loss_coeff = 0.05;
    cfg.moe_z_loss_coeff = 0.005;
    cfg.moe_expert_capacity_factor = l->capacity;
    cfg.expert_model_parallel_size = l->ep;
    cfg.tensor_model_parallel_size = l->tp;
    cfg.pipeline_model_parallel_size = l->pp;
    cfg.sequence_parallel = l->tp > 1;
    cfg.moe_token_dispatcher_type = l->dispatcher;
    cfg.expert_tensor_parallel_size = l->cut ? l->tp : 1;
    return cfg;
}

static void build(built *b, const tsr_config *cfg, tsr_grid *grid, int64_t vocab)
{
    memset(b, 0, sizeof *b);
    int microbatches = cfg->pipeline_model_parallel_size > 1 ? MICROBATCHES : 0;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&b->model, cfg, vocab, grid, microbatches), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve_on(&b->model, grid, &b->plan), TSR_OK);
    b->net = b->model.net;
}

typedef struct batch {
    int32_t *tokens, *targets;
    float *mask;
} batch;

static tsr_microbatch microbatch_of(tsr_dataset *ds, int b, int64_t first, batch *mem)
{
    tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, first, b, mem->tokens, mem->targets, mem->mask);
    tsr_microbatch mb = {mem->tokens, mem->targets, mem->mask, first, 2, NULL, NULL, NULL,
                         NULL, NULL};
    return mb;
}

static void compare(const layout *l)
{
    int np = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    int dp_size = np / (l->tp * l->pp);
    if (np % (l->ep * l->tp * l->pp) != 0 || dp_size % l->ep != 0)
        return;
    layout one = {1, 1, 1, l->capacity, 0, false};
    tsr_config ref_cfg = moe_config(&one, 1), ep_cfg = moe_config(l, dp_size);
    tsr_comm_options options;
    tsr_comm_options_from_config(&ep_cfg, &options);
    tsr_comm *world = NULL;
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &options, &world), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&ep_cfg, world, &grid), TSR_OK);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&ref_cfg, &ds), TSR_OK);
    built ref, par;
    build(&ref, &ref_cfg, NULL, ds->vocab_size);
    build(&par, &ep_cfg, grid, ds->vocab_size);
    tsr_model rm = tsr_net_as_model(ref.net), pm = tsr_net_as_model(par.net);
    CU_ASSERT_TRUE((pm.expert_count > 0) == (l->ep > 1));

    /* data-parallel rank r runs micro batches r M .. r M + M - 1 */
    int b = ref_cfg.micro_batch_size, rank = tsr_grid_dp_rank(grid);
    size_t rows = (size_t)b * (size_t)ref_cfg.seq_length;
    batch mem = {malloc((rows + 1) * sizeof(int32_t)), malloc(rows * sizeof(int32_t)),
                 malloc(rows * sizeof(float))};
    float scale = 1.0f / (float)(dp_size * MICROBATCHES);
    double my_ref_loss = 0.0, ref_aux = 0.0;
    for (int m = 0; m < dp_size * MICROBATCHES; m++) {
        tsr_microbatch mb = microbatch_of(ds, b, (int64_t)m * b, &mem);
        double loss = 0.0;
        CU_ASSERT_EQUAL_FATAL(rm.train_microbatch(rm.self, &mb, scale, &loss), TSR_OK);
        if (m / MICROBATCHES == rank)
            my_ref_loss += loss;
    }
    ref_aux = rm.take_aux_loss(rm.self);
    CU_ASSERT_EQUAL_FATAL(rm.finish_grads(rm.self), TSR_OK);
    double loss = 0.0;
    int64_t first = (int64_t)rank * MICROBATCHES * b;
    if (pm.train_iteration != NULL) { /* the pipeline's schedule */
        tsr_microbatch_source src = {ds, first, b, 2};
        CU_ASSERT_EQUAL_FATAL(pm.train_iteration(pm.self, &src, MICROBATCHES, scale, &loss),
                              TSR_OK);
    }
    for (int m = 0; pm.train_iteration == NULL && m < MICROBATCHES; m++) {
        tsr_microbatch mb = microbatch_of(ds, b, first + m * b, &mem);
        double one_loss = 0.0;
        CU_ASSERT_EQUAL_FATAL(pm.train_microbatch(pm.self, &mb, scale, &one_loss), TSR_OK);
        loss += one_loss;
    }
    CU_ASSERT_EQUAL_FATAL(pm.finish_grads(pm.self), TSR_OK);
    double loss_error = tsr_test_sum_over(world, fabs(loss - my_ref_loss) / fabs(my_ref_loss)) / np;
    CU_ASSERT_TRUE(loss_error <= 1e-5);
    /* each stage's layers, once per tp group */
    double aux = tsr_test_sum_over(world, pm.take_aux_loss(pm.self));
    double aux_error = fabs(aux - ref_aux) / fabs(ref_aux);
    CU_ASSERT_TRUE(aux_error <= 1e-5);

    /* the sums training does: dense over dp, the expert region over expert-dp */
    tsr_comm *dp = tsr_grid_comm(grid, TSR_GROUP_DP);
    tsr_comm *edp = tsr_grid_comm(grid, TSR_GROUP_EXPERT_DP);
    size_t ec = pm.expert_count;
    tsr_comm_allreduce(pm.grads + ec, pm.grads + ec, pm.param_count - ec, TSR_COMM_FP32,
                       TSR_COMM_SUM, dp, NULL);
    if (tsr_grid_expert_dp_size(grid) > 1)
        tsr_comm_allreduce(pm.grads, pm.grads, ec, TSR_COMM_FP32, TSR_COMM_SUM, edp, NULL);

    double worst = 0.0, compared = 0.0;
    const char *worst_name = "";
    int experts_seen = 0;
    for (size_t i = 0; i < pm.tensor_count; i++) {
        const tsr_tensor_desc *t = &pm.tensors[i];
        const tsr_net_param *p = tsr_test_net_find(ref.net, t->name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        bool expert = t->row_count > 0 && t->offset < ec && t->experts > 1;
        experts_seen += expert;
        bool counts = expert ? tsr_grid_expert_dp_rank(grid) == 0 : rank == 0;
        double dsum = 0.0, nsum = 0.0;
        /* a SwiGLU fc1 is two blocks: the next of the same name folds in */
        size_t j = i;
        for (; j < pm.tensor_count && strcmp(pm.tensors[j].name, t->name) == 0; j++)
            if (counts && pm.tensors[j].writer && pm.tensors[j].row_count > 0)
                compared += (double)tsr_test_block_compare(&pm.tensors[j], pm.grads, rm.grads,
                                                           p->offset, p->cols, &dsum, &nsum);
        i = j - 1;
        dsum = tsr_test_sum_over(world, dsum);
        nsum = tsr_test_sum_over(world, nsum);
        double err = nsum > 0.0 ? sqrt(dsum / nsum) : sqrt(dsum);
        if (err > worst) {
            worst = err;
            worst_name = t->name;
        }
        CU_ASSERT_TRUE(nsum > 0.0);
        CU_ASSERT_TRUE(err <= 1e-4);
    }
    /* fc1 and fc2 of each layer of this stage, in the expert region */
    if (l->ep > 1)
        CU_ASSERT_EQUAL(experts_seen, 2 * ref_cfg.num_layers / l->pp);
    /* every element of the model compared exactly once */
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(ref.net, &count);
    double expected = 0.0;
    for (size_t i = 0; i < count; i++) {
        bool vocab = table[i].split == TSR_PARAM_SPLIT_VOCAB;
        expected += (double)((vocab ? ds->vocab_size : table[i].rows) * table[i].cols);
    }
    CU_ASSERT_DOUBLE_EQUAL(tsr_test_sum_over(world, compared), expected, 0.5);
    if (tsr_comm_rank(world) == 0)
        printf("\n  ep=%d tp=%d%s pp=%d dp=%d capacity %g %s: losses %.2g, balancing loss "
               "%.2g, worst gradient %.2g (%s)",
               l->ep, l->tp, l->cut ? " (experts cut)" : "", l->pp, dp_size, l->capacity,
               l->dispatcher ? "allgather" : "alltoall", loss_error, aux_error, worst,
               worst_name);
    free(mem.tokens);
    free(mem.targets);
    free(mem.mask);
    tsr_plan_release(&ref.plan);
    tsr_plan_release(&par.plan);
    tsr_test_net_free(&ref.model);
    tsr_test_net_free(&par.model);
    tsr_dataset_close(ds);
    tsr_grid_destroy(grid);
    tsr_comm_destroy(world);
}

static int world_size(void)
{
    int np = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    return np;
}

/* EP over every rank, and EP 2 x DP 2 at np 4 */
static void test_expert_parallel(void)
{
    int np = world_size();
    compare(&(layout){np, 1, 1, 0.0, 0, false});
    compare(&(layout){np, 1, 1, 1.0, 0, false});
    if (np > 2)
        compare(&(layout){2, 1, 1, 0.0, 0, false});
}

/* TP 2 with SP (and EP over the rest): experts whole on each tp rank's
 * rows, or cut over tp on the gathered rows */
static void test_tensor_parallel(void)
{
    int ep = world_size() / 2;
    for (int cut = 0; cut < 2; cut++) {
        compare(&(layout){ep, 2, 1, 0.0, 0, cut});
        compare(&(layout){ep, 2, 1, 1.0, 0, cut});
    }
}

/* PP 2 x EP 2 at np 4; TP 2 x PP 2 x EP 2 at np 8 */
static void test_pipeline(void)
{
    int np = world_size();
    if (np == 4)
        compare(&(layout){2, 1, 2, 0.0, 0, false});
    if (np == 8)
        for (int cut = 0; cut < 2; cut++)
            compare(&(layout){2, 2, 2, 1.0, 0, cut});
}

/* the allgather dispatcher: every rank's rows gathered, outputs summed back */
static void test_allgather_dispatcher(void)
{
    int np = world_size();
    compare(&(layout){np, 1, 1, 0.0, 1, false});
    compare(&(layout){np, 1, 1, 1.0, 1, false});
    compare(&(layout){np / 2, 2, 1, 1.0, 1, true});
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_expert_parallel),
    TSR_TEST(test_tensor_parallel),
    TSR_TEST(test_pipeline),
    TSR_TEST(test_allgather_dispatcher),
};

int main(int argc, char **argv)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("moe expert parallelism", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
