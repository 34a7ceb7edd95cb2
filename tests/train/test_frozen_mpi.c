/*
 * test_frozen_mpi.c - frozen parameters (TSR_PARAM_FROZEN), on 2
 * data-parallel ranks with the distributed optimizer.
 *
 * The GPT spec with its final norm replaced by a module that declares the
 * norm's parameters frozen. Exact checks:
 *   - the frozen parameters take no gradient and no optimizer memory
 *     (plan: params = trainable + frozen floats, grads = trainable);
 *   - after 4 training iterations the frozen values are bitwise their
 *     initial ones (1 and 0) while every other parameter moved;
 *   - a checkpoint holds them under model/ only (no optimizer moments),
 *     and --load restores them bitwise.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "collectives/comm.h"
#include "data/dataset.h"
#include "harness.h"
#include "sharding/data_parallel.h"
#include "sharding/grid.h"
#include "test_net.h"
#include "gpt_spec.h"
#include "tessera/modules.h"
#include "train/trainer.h"

/* the built-in norm with its parameters frozen */
static tsr_status frozen_norm_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    tsr_status st = tsr_module_norm.declare(info, decl);
    for (int i = 0; i < decl->param_count; i++)
        decl->params[i].flags |= TSR_PARAM_FROZEN;
    return st;
}

static tsr_module_kind frozen_norm;

static tsr_config test_config(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 2;
    cfg.hidden_size = 64;
    cfg.num_attention_heads = 4;
    cfg.seq_length = 32;
    cfg.micro_batch_size = 2;
    cfg.global_batch_size = 8;
    cfg.train_iters = 4;
    cfg.lr = 1e-2;
    cfg.lr_warmup_iters = 0;
    cfg.use_distributed_optimizer = true;
    cfg.log_level = 2;
    return cfg;
}

static void test_frozen_final_norm(void)
{
    tsr_config cfg = test_config();
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    tsr_comm_options opts = {TSR_BACKEND_MPI, 60.0, "world", NULL};
    tsr_comm *world = NULL;
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&cfg, world, &grid), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_grid_dp_size(grid), 2);

    frozen_norm = tsr_module_norm;
    frozen_norm.name = "frozen_norm";
    frozen_norm.declare = frozen_norm_declare;
    tsr_test_net t = {0};
    CU_ASSERT_EQUAL_FATAL(tsr_spec_arena_create(&t.arena), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_build_spec(&cfg, t.arena, &t.spec), TSR_OK);
    tsr_norm_config nc = {cfg.normalization, (float)cfg.norm_epsilon};
    t.spec.final_norm = tsr_spec_new(t.arena, &frozen_norm, "decoder.final_layernorm", &nc,
                                     sizeof nc);
    tsr_net_dims dims = tsr_net_dims_from_config(&cfg, ds->vocab_size, 0);
    CU_ASSERT_EQUAL_FATAL(tsr_net_build(&t.spec, &cfg, &dims, &t.net), TSR_OK);

    tsr_model planned = tsr_net_as_model(t.net);
    size_t hidden16 = ((size_t)cfg.hidden_size + 15) / 16 * 16;
    CU_ASSERT_EQUAL(planned.frozen_count, 2 * hidden16); /* LayerNorm weight and bias */
    tsr_memory_plan plan = {0};
    tsr_net_plan(t.net, &plan);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS],
                    (planned.param_count + planned.frozen_count) * sizeof(float));
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_GRADS], planned.param_count * sizeof(float));
    tsr_trainer_plan_sharded(&cfg, planned.param_count, 2, &plan);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&plan), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_carve(t.net, grid, &plan), TSR_OK);

    tsr_model model = tsr_net_as_model(t.net);
    size_t n = model.param_count, nf = model.frozen_count;
    float *before = malloc(n * sizeof *before), *frozen_before = malloc(nf * sizeof *before);
    memcpy(before, model.params, n * sizeof *before);
    memcpy(frozen_before, model.frozen, nf * sizeof *before);
    size_t count = 0, frozen_entries = 0;
    const tsr_net_param *table = tsr_net_params(t.net, &count);
    for (size_t i = 0; i < count; i++)
        frozen_entries += table[i].frozen;
    CU_ASSERT_EQUAL(frozen_entries, 2);

    tsr_dp *dp = NULL;
    tsr_trainer_hooks hooks = {0};
    tsr_trainer tr;
    CU_ASSERT_EQUAL_FATAL(tsr_dp_create(&cfg, grid, &model, &dp), TSR_OK);
    tsr_dp_fill_hooks(dp, &hooks);
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_init(&tr, &cfg, ds, model, &hooks, 0.0, &plan), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_run(&tr, NULL), TSR_OK);
    CU_ASSERT_EQUAL(memcmp(model.frozen, frozen_before, nf * sizeof *before), 0);
    size_t unchanged = 0;
    for (size_t i = 0; i < count; i++) {
        const tsr_net_param *p = &table[i];
        if (p->frozen || !p->local)
            continue;
        size_t elems = (size_t)(p->local_rows * p->local_cols);
        unchanged += memcmp(model.params + p->offset, before + p->offset,
                            elems * sizeof *before) == 0;
    }
    CU_ASSERT_EQUAL(unchanged, 0);

    /* checkpoint: model/ has the frozen tensors, optimizer/ does not */
    char dir[] = "/tmp/tsr_frozen_XXXXXX";
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    tsr_checkpoint_state state = {tr.iteration, tr.consumed_samples, tr.adam_step,
                                  0,            cfg.seed,           TSR_CHECKPOINT_FORMAT_VERSION, false, false, "", 0.0, 0, 0, 0};
    tsr_checkpoint_content content = {model.tensors, model.tensor_count, model.params, tr.adam_m,
                                      tr.adam_v,     hooks.shard,        model.frozen};
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_save(dir, &cfg, &state, &content, MPI_COMM_WORLD),
                          TSR_OK);
    if (rank == 0) {
        char path[512];
        tsr_checkpoint_path(dir, tr.iteration, path, sizeof path);
        hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        CU_ASSERT_TRUE_FATAL(file >= 0);
        CU_ASSERT_TRUE(H5Lexists(file, "model/decoder.final_layernorm.weight", H5P_DEFAULT) > 0);
        hid_t group = H5Gopen2(file, "optimizer/exp_avg", H5P_DEFAULT);
        CU_ASSERT_TRUE(H5Lexists(group, "decoder.final_layernorm.weight", H5P_DEFAULT) == 0);
        CU_ASSERT_TRUE(H5Lexists(group, "decoder.layers.0.mlp.linear_fc1.weight", H5P_DEFAULT) >
                       0);
        H5Gclose(group);
        H5Fclose(file);
    }
    memset(model.frozen, 0, nf * sizeof *model.frozen);
    tsr_checkpoint_state loaded;
    CU_ASSERT_EQUAL_FATAL(
        tsr_checkpoint_load("--load", dir, &cfg, &loaded, &content, MPI_COMM_WORLD), TSR_OK);
    CU_ASSERT_EQUAL(memcmp(model.frozen, frozen_before, nf * sizeof *before), 0);

    tsr_dp_destroy(dp);
    tsr_plan_release(&plan);
    tsr_test_net_free(&t);
    tsr_grid_destroy(grid);
    tsr_comm_destroy(world);
    tsr_dataset_close(ds);
    free(before);
    free(frozen_before);
}

static tsr_status frozen_head_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    tsr_status st = tsr_module_lm_head.declare(info, decl);
    decl->params[0].flags |= TSR_PARAM_FROZEN;
    return st;
}

static void test_frozen_and_tied_is_refused(void)
{
    tsr_config cfg = test_config();
    tsr_test_net t = {0};
    CU_ASSERT_EQUAL_FATAL(tsr_spec_arena_create(&t.arena), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_gpt_build_spec(&cfg, t.arena, &t.spec), TSR_OK);
    tsr_module_kind kind = tsr_module_lm_head;
    kind.declare = frozen_head_declare;
    tsr_lm_head_config hc = {true, 0.02f};
    t.spec.head = tsr_spec_new(t.arena, &kind, "output_layer", &hc, sizeof hc);
    tsr_net_dims dims = tsr_net_dims_from_config(&cfg, 256, 0);
    CU_ASSERT_NOT_EQUAL(tsr_net_build(&t.spec, &cfg, &dims, &t.net), TSR_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "both frozen and tied"));
    tsr_test_net_free(&t);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_frozen_final_norm),
    TSR_TEST(test_frozen_and_tied_is_refused),
};

int main(int argc, char **argv)
{
    const tsr_test_suite suites[] = {TSR_SUITE("frozen", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
