/*
 * test_dp_mpi.c - the data-parallel engine under mpirun (every rank is a
 * data-parallel rank): bucketed all-reduce and reduce-scatter with and
 * without overlap, the gradient norm counted once across ranks, the
 * parameter all-gather, and the trainer driving it all on a model with a
 * closed-form gradient, against the same global batch on one rank.
 *
 * Gradients are multiples of 1/4 with small integer factors, so every sum
 * is exact whatever the reduction order and results are compared exactly.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "data/dataset.h"
#include "harness.h"
#include "sharding/data_parallel.h"
#include "sharding/dp_internal.h"
#include "tessera/log.h"

static tsr_comm *world; /* made and freed by each test (WITH_WORLD) */

#define WITH_WORLD(body)                                                                    \
    do {                                                                                   \
        tsr_comm_options opts = {TSR_BACKEND_MPI, 60.0, "world", NULL};                    \
        CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK); \
        body;                                                                              \
        tsr_comm_destroy(world);                                                           \
        world = NULL;                                                                      \
    } while (0)

#define N 1000

/* A model of N parameters in three tensors with a gap [600, 640) that no
 * tensor covers (alignment padding: never counted), in two spans. */
typedef struct fake {
    float *params, *grads;
    tsr_param_span spans[2];
    tsr_tensor_desc tensors[3];
    tsr_model model;
} fake;

static void fake_init(fake *f, size_t padded)
{
    memset(f, 0, sizeof *f);
    f->params = calloc(padded, sizeof(float));
    f->grads = calloc(padded, sizeof(float));
    f->spans[0] = (tsr_param_span){0, 600, true, false};
    f->spans[1] = (tsr_param_span){600, 400, false, false};
    f->tensors[0] = (tsr_tensor_desc){"w", 40, 10, 0, 40, 0, 10, 0, true, false, false, 0};
    f->tensors[1] = (tsr_tensor_desc){"v", 200, 1, 0, 200, 0, 1, 400, true, false, false, 0};
    f->tensors[2] = (tsr_tensor_desc){"u", 36, 10, 0, 36, 0, 10, 640, true, false, false, 0};
    f->model = (tsr_model){.self = f,
                           .params = f->params,
                           .grads = f->grads,
                           .param_count = N,
                           .spans = f->spans,
                           .span_count = 2,
                           .tensors = f->tensors,
                           .tensor_count = 3};
}

static void fake_free(fake *f)
{
    free(f->params);
    free(f->grads);
}

static float grad_of(int rank, size_t i)
{
    return (float)((rank + 1) * ((int)(i % 7) - 3)) * 0.25f;
}

static bool in_tensor(size_t i)
{
    return i < 600 || (i >= 640 && i < 1000);
}

typedef struct engine_case {
    bool sharded, overlap_grads, overlap_params;
    int64_t bucket;
} engine_case;

static void check_engine(const engine_case *c)
{
    int rank = tsr_comm_rank(world), size = tsr_comm_size(world);
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.use_distributed_optimizer = c->sharded;
    cfg.overlap_param_gather = c->overlap_params;
    cfg.ddp_bucket_size = c->bucket;
    tsr_grid *grid = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&cfg, world, &grid), TSR_OK);
    fake f;
    fake_init(&f, tsr_shard_padded_count(N, size));
    for (size_t i = 0; i < N; i++)
        f.grads[i] = grad_of(rank, i);
    tsr_dp *dp = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dp_create(&cfg, grid, &f.model, &dp), TSR_OK);
    tsr_trainer_hooks hooks = {0};
    tsr_dp_fill_hooks(dp, &hooks);
    const tsr_bucket_layout *l = tsr_dp_layout(dp);
    CU_ASSERT_EQUAL(hooks.dp_size, size);
    CU_ASSERT_EQUAL(hooks.shard.sharded_state, c->sharded);

    if (c->overlap_grads) { /* backward reports layers final, from the end */
        static const size_t marks[] = {900, 640, 300, 1};
        for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
            hooks.grads_ready(hooks.ctx, marks[m]);
            CU_ASSERT_EQUAL(dp->started, tsr_bucket_layout_ready(l, marks[m]));
        }
        CU_ASSERT_TRUE(dp->started > 0 || l->bucket_count == 1);
    }
    CU_ASSERT_EQUAL_FATAL(hooks.finish_grad_sync(hooks.ctx), TSR_OK);
    CU_ASSERT_EQUAL(dp->started, 0);

    /* the owned slices (all of it without sharding) hold the sum */
    float factor = (float)(size * (size + 1) / 2);
    int wrong = 0;
    for (size_t b = 0; b < l->bucket_count; b++) {
        const tsr_shard_range *o = &hooks.shard.ranges[b];
        for (size_t e = o->offset; e < o->offset + o->count; e++)
            wrong += f.grads[e] != (e < N ? grad_of(0, e) * factor : 0.0f);
    }
    if (!c->sharded)
        for (size_t e = 0; e < N; e++)
            wrong += f.grads[e] != grad_of(0, e) * factor;
    CU_ASSERT_EQUAL(wrong, 0);

    /* the norm counts each element in a tensor once, across all ranks */
    double sq = tsr_optimizer_grad_sumsq(&f.model, &hooks.shard), want = 0.0;
    CU_ASSERT_EQUAL_FATAL(hooks.sum_world(hooks.ctx, &sq, 1), TSR_OK);
    for (size_t e = 0; e < N; e++)
        if (in_tensor(e))
            want += (double)(grad_of(0, e) * factor) * (double)(grad_of(0, e) * factor);
    CU_ASSERT_DOUBLE_EQUAL(sq, want, 1e-9 * want);

    double one = rank + 1;
    CU_ASSERT_EQUAL(hooks.sum_scalars(hooks.ctx, &one, 1), TSR_OK);
    CU_ASSERT_DOUBLE_EQUAL(one, size * (size + 1) / 2, 0.0);

    if (c->sharded) { /* each rank's slices reach everyone */
        for (size_t e = 0; e < l->padded_count; e++)
            f.params[e] = -1.0f;
        for (size_t b = 0; b < l->bucket_count; b++)
            for (size_t e = l->owned[b].offset; e < l->owned[b].offset + l->owned[b].count; e++)
                f.params[e] = 0.5f * (float)e;
        CU_ASSERT_EQUAL(hooks.start_param_sync(hooks.ctx), TSR_OK);
        CU_ASSERT_EQUAL(hooks.finish_param_sync(hooks.ctx), TSR_OK);
        wrong = 0;
        for (size_t e = 0; e < l->padded_count; e++)
            wrong += f.params[e] != 0.5f * (float)e;
        CU_ASSERT_EQUAL(wrong, 0);
    } else {
        CU_ASSERT_PTR_NULL(hooks.start_param_sync);
    }
    tsr_dp_destroy(dp);
    tsr_grid_destroy(grid);
    fake_free(&f);
}

static void test_allreduce_one_bucket(void)
{
    WITH_WORLD(check_engine(&(engine_case){false, false, false, 0}));
}

static void test_allreduce_buckets_overlapped(void)
{
    WITH_WORLD(check_engine(&(engine_case){false, true, false, 130}));
}

static void test_reduce_scatter_one_bucket(void)
{
    WITH_WORLD(check_engine(&(engine_case){true, false, false, 40000000}));
}

static void test_reduce_scatter_buckets_overlapped(void)
{
    WITH_WORLD(check_engine(&(engine_case){true, true, false, 100}));
    WITH_WORLD(check_engine(&(engine_case){true, true, true, 100}));
    WITH_WORLD(check_engine(&(engine_case){true, false, true, 1}));
}

/* ------------------------------------------------ the trainer on top */

#define NQ 200

/* loss = mean_i 0.5 (p_i - c - 50 - i/64)^2 with c the micro batch's
 * first sample (targets far from the parameters: no gradient near zero,
 * where Adam would magnify rounding); reports the upper half final before
 * finishing the lower. */
typedef struct quad {
    float *params, *grads;
    tsr_param_span spans[2];
} quad;

static tsr_status quad_train(void *self, const tsr_microbatch *mb, float scale, double *loss)
{
    quad *q = self;
    double sum = 0.0;
    for (int half = 1; half >= 0; half--) {
        for (int i = half * NQ / 2; i < (half + 1) * NQ / 2; i++) {
            double diff = q->params[i] - (double)mb->first_sample - 50.0 - i / 64.0;
            sum += 0.5 * diff * diff;
            q->grads[i] += (float)(scale * diff / NQ);
        }
        if (mb->grads_ready != NULL)
            mb->grads_ready(mb->grads_ready_ctx, (size_t)(half * NQ / 2));
    }
    *loss = sum / NQ;
    return TSR_OK;
}

static tsr_status quad_eval(void *self, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    (void)self;
    (void)mb;
    memset(out, 0, sizeof *out);
    return TSR_OK;
}

/* Trains `iters` iterations of global batch 12 (micro batch 1) and leaves
 * the final parameters in out. with_dp: this rank is one of the world's
 * data-parallel ranks; otherwise it runs the whole batch alone. */
static void train_quad(bool with_dp, bool sharded, bool overlap, int64_t iters, float *out)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.micro_batch_size = 1;
    cfg.global_batch_size = 12;
    cfg.seq_length = 16;
    cfg.lr = 0.05;
    cfg.lr_decay_style = TSR_LR_CONSTANT;
    cfg.weight_decay = 0.1;
    cfg.clip_grad = 0.3; /* active: a wrong norm changes every update */
    cfg.train_iters = iters;
    cfg.data_path = "synthetic:random";
    cfg.use_distributed_optimizer = sharded;
    cfg.overlap_grad_reduce = overlap;
    cfg.overlap_param_gather = overlap && sharded;
    cfg.ddp_bucket_size = 48;
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    tsr_grid *grid = NULL;
    if (with_dp)
        CU_ASSERT_EQUAL_FATAL(tsr_grid_create(&cfg, world, &grid), TSR_OK);
    int dp_size = with_dp ? tsr_grid_dp_size(grid) : 1;
    tsr_memory_plan plan = {0};
    tsr_plan_add_floats(&plan, TSR_MEM_PARAMS, NQ);
    tsr_plan_add_floats(&plan, TSR_MEM_GRADS, NQ);
    tsr_trainer_plan_sharded(&cfg, NQ, dp_size, &plan);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&plan), TSR_OK);
    quad q;
    CU_ASSERT_EQUAL_FATAL(tsr_plan_take_floats(&plan, TSR_MEM_PARAMS, NQ, &q.params), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_take_floats(&plan, TSR_MEM_GRADS, NQ, &q.grads), TSR_OK);
    for (int i = 0; i < NQ; i++)
        q.params[i] = (float)(i % 13);
    q.spans[0] = (tsr_param_span){0, 120, true, false};
    q.spans[1] = (tsr_param_span){120, 80, false, false};
    tsr_model m = {.self = &q,
                   .params = q.params,
                   .grads = q.grads,
                   .param_count = NQ,
                   .spans = q.spans,
                   .span_count = 2,
                   .train_microbatch = quad_train,
                   .eval_microbatch = quad_eval};
    tsr_trainer_hooks hooks = {0};
    tsr_dp *dp = NULL;
    if (with_dp) {
        CU_ASSERT_EQUAL_FATAL(tsr_dp_create(&cfg, grid, &m, &dp), TSR_OK);
        tsr_dp_fill_hooks(dp, &hooks);
    }
    tsr_trainer tr;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_init(&tr, &cfg, ds, m, &hooks, 0.0, &plan), TSR_OK);
    if (sharded && dp_size > 1)
        CU_ASSERT_EQUAL(tr.state_count, tsr_shard_padded_count(NQ, dp_size) / (size_t)dp_size);
    CU_ASSERT_EQUAL(tsr_trainer_run(&tr, NULL), TSR_OK);
    memcpy(out, q.params, NQ * sizeof *out);
    tsr_dp_destroy(dp);
    tsr_grid_destroy(grid);
    tsr_plan_release(&plan);
    tsr_dataset_close(ds);
}

static void check_trainer(bool sharded, bool overlap)
{
    float alone[NQ], together[NQ];
    train_quad(false, false, false, 4, alone);
    train_quad(true, sharded, overlap, 4, together);
    CU_ASSERT_TRUE(tsr_test_rel_l2(together, alone, NQ) < 1e-6);
    float start[NQ];
    for (int i = 0; i < NQ; i++)
        start[i] = (float)(i % 13);
    CU_ASSERT_TRUE(tsr_test_rel_l2(together, start, NQ) > 1e-3); /* it trained */
    /* the same layout twice: bitwise */
    float again[NQ];
    train_quad(true, sharded, overlap, 4, again);
    CU_ASSERT_EQUAL(memcmp(again, together, sizeof again), 0);
}

static void test_trainer_data_parallel_matches_one_rank(void)
{
    WITH_WORLD(check_trainer(false, false));
    WITH_WORLD(check_trainer(false, true));
}

static void test_trainer_distributed_optimizer_matches_one_rank(void)
{
    WITH_WORLD(check_trainer(true, false));
    WITH_WORLD(check_trainer(true, true));
}

static const tsr_test_case engine_cases[] = {
    TSR_TEST(test_allreduce_one_bucket),
    TSR_TEST(test_allreduce_buckets_overlapped),
    TSR_TEST(test_reduce_scatter_one_bucket),
    TSR_TEST(test_reduce_scatter_buckets_overlapped),
};

static const tsr_test_case trainer_cases[] = {
    TSR_TEST(test_trainer_data_parallel_matches_one_rank),
    TSR_TEST(test_trainer_distributed_optimizer_matches_one_rank),
};

static const tsr_test_suite suites[] = {TSR_SUITE("dp engine", engine_cases),
                                        TSR_SUITE("dp trainer", trainer_cases)};

int main(int argc, char **argv)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    return tsr_test_mpi_main(&argc, &argv, suites, 2);
}
