/*
 * test_dp_parts.c - the pure pieces of data parallelism, without MPI:
 * bucket boundaries and owned slices, readiness of buckets during
 * backward, the shard arithmetic and the memory plan per rank (GPT-2
 * numbers worked out from the architecture), the gradient sum of squares
 * over owned writer blocks, AdamW on shards against AdamW on the whole
 * buffer, and the hyperslab boxes of a flat range of a tensor block.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "checkpoint/checkpoint_internal.h"
#include "harness.h"
#include "sharding/grad_buckets.h"
#include "tessera/log.h"
#include "train/optimizer.h"
#include "train/trainer.h"

/* ------------------------------------------------------------ buckets */

static void test_bucket_table_by_hand(void)
{
    /* 100 gradients over 3 ranks, buckets of 40: unit 3 x 16 = 48, so
     * buckets of 48 over 144 padded elements, cut from the end */
    tsr_bucket_layout l;
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(100, 3, 1, 40, true, &l), TSR_OK);
    CU_ASSERT_EQUAL(l.padded_count, 144);
    CU_ASSERT_EQUAL_FATAL(l.bucket_count, 3);
    size_t want[3][2] = {{0, 48}, {48, 48}, {96, 48}};
    size_t owned[3][3] = {{16, 16, 0}, {64, 16, 16}, {112, 16, 32}};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(l.buckets[i].offset, want[i][0]);
        CU_ASSERT_EQUAL(l.buckets[i].count, want[i][1]);
        CU_ASSERT_EQUAL(l.owned[i].offset, owned[i][0]);
        CU_ASSERT_EQUAL(l.owned[i].count, owned[i][1]);
        CU_ASSERT_EQUAL(l.owned[i].state_offset, owned[i][2]);
    }
    tsr_bucket_layout_free(&l);

    /* all-reduce layout: no padding, the short bucket first in memory,
     * slices of 70 elements over 4 ranks differ by one */
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(170, 4, 3, 100, false, &l), TSR_OK);
    CU_ASSERT_EQUAL(l.padded_count, 170);
    CU_ASSERT_EQUAL_FATAL(l.bucket_count, 2);
    CU_ASSERT_EQUAL(l.buckets[0].offset, 0);
    CU_ASSERT_EQUAL(l.buckets[0].count, 70);
    CU_ASSERT_EQUAL(l.buckets[1].offset, 70);
    CU_ASSERT_EQUAL(l.buckets[1].count, 100);
    CU_ASSERT_EQUAL(l.owned[0].offset, 52); /* floor(70*3/4) */
    CU_ASSERT_EQUAL(l.owned[0].count, 18);
    CU_ASSERT_EQUAL(l.owned[0].state_offset, 52); /* flat index: state not sharded */
    CU_ASSERT_EQUAL(l.owned[1].offset, 145);
    CU_ASSERT_EQUAL(l.owned[1].count, 25);
    tsr_bucket_layout_free(&l);
}

/* Expert parallelism: the expert region [0, 128) is cut apart from the
 * dense [128, 300) and sliced over the expert-data-parallel group (2 of
 * the 4 data-parallel ranks); it is the last to reduce. */
static void test_expert_region_by_hand(void)
{
    tsr_bucket_layout l;
    /* dp 4, edp 2: padded to 320 (unit 64); dense 192 in slices of 48,
     * experts 128 in slices of 64; this rank is dp rank 3, edp rank 1 */
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute_experts(300, 128, 4, 3, 2, 1, 0, true, &l),
                          TSR_OK);
    CU_ASSERT_EQUAL(l.padded_count, 320);
    CU_ASSERT_EQUAL_FATAL(l.bucket_count, 2);
    CU_ASSERT_TRUE(l.buckets[0].expert && !l.buckets[1].expert);
    CU_ASSERT_EQUAL(l.buckets[0].offset, 0);
    CU_ASSERT_EQUAL(l.buckets[0].count, 128);
    CU_ASSERT_EQUAL(l.buckets[1].offset, 128);
    CU_ASSERT_EQUAL(l.buckets[1].count, 192);
    CU_ASSERT_EQUAL(l.owned[0].offset, 64);
    CU_ASSERT_EQUAL(l.owned[0].count, 64);
    CU_ASSERT_EQUAL(l.owned[0].state_offset, 0);
    CU_ASSERT_EQUAL(l.owned[1].offset, 128 + 3 * 48);
    CU_ASSERT_EQUAL(l.owned[1].count, 48);
    CU_ASSERT_EQUAL(l.owned[1].state_offset, 64);
    tsr_param_shard shard = tsr_bucket_layout_shard(&l);
    CU_ASSERT_EQUAL(tsr_shard_state_floats(&shard, 300), 112);
    CU_ASSERT_EQUAL(tsr_shard_state_count(300, 128, 4, 2), 112);
    CU_ASSERT_EQUAL(tsr_bucket_group_size(&l, &l.buckets[0]), 2);
    CU_ASSERT_EQUAL(tsr_bucket_group_rank(&l, &l.buckets[1]), 3);
    tsr_bucket_layout_free(&l);

    /* all-reduce, buckets of 100: each region cut from its own end, the
     * dense ones ready as backward reaches them, the experts' at the end */
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute_experts(300, 128, 4, 0, 2, 0, 100, false, &l),
                          TSR_OK);
    CU_ASSERT_EQUAL_FATAL(l.bucket_count, 4);
    size_t want[4][2] = {{0, 28}, {28, 100}, {128, 72}, {200, 100}};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(l.buckets[i].offset, want[i][0]);
        CU_ASSERT_EQUAL(l.buckets[i].count, want[i][1]);
        CU_ASSERT_EQUAL(l.buckets[i].expert, i < 2);
    }
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 200), 1);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 128), 2);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 0), 4);
    tsr_bucket_layout_free(&l);

    /* a region that does not cut into the dense slices' unit */
    CU_ASSERT_EQUAL(tsr_bucket_layout_compute_experts(300, 100, 4, 0, 2, 0, 0, true, &l),
                    TSR_ERR_INVALID_ARG);
}

/* Every combination: buckets tile [0, padded) in memory order, all but the
 * first have the full size, the owned slices of all ranks tile each bucket
 * exactly once, and the even layout gives equal aligned slices packed in
 * the state. */
static void check_layout(size_t n, int dp, int64_t bucket, bool even)
{
    tsr_bucket_layout l[8];
    for (int r = 0; r < dp; r++)
        CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(n, dp, r, bucket, even, &l[r]), TSR_OK);
    size_t padded = l[0].padded_count;
    size_t unit = (size_t)dp * TSR_SHARD_ALIGN_FLOATS;
    if (even && dp > 1) {
        CU_ASSERT_TRUE(padded >= n && padded < n + unit && padded % unit == 0);
    } else if (!even) {
        CU_ASSERT_EQUAL(padded, n);
    }
    unsigned char *seen = calloc(padded, 1);
    size_t end = 0;
    for (size_t i = 0; i < l[0].bucket_count; i++) {
        const tsr_grad_bucket *b = &l[0].buckets[i];
        CU_ASSERT_EQUAL(b->offset, end);
        end = b->offset + b->count;
        if (i > 0)
            CU_ASSERT_EQUAL(b->count, l[0].buckets[l[0].bucket_count - 1].count);
        if (even)
            CU_ASSERT_EQUAL(b->count % (dp > 1 ? unit : 1), 0);
        for (int r = 0; r < dp; r++) {
            const tsr_shard_range *o = &l[r].owned[i];
            CU_ASSERT_TRUE(o->offset >= b->offset && o->offset + o->count <= end);
            if (even)
                CU_ASSERT_EQUAL(o->count, b->count / (size_t)dp);
            for (size_t e = o->offset; e < o->offset + o->count; e++)
                seen[e]++;
        }
    }
    CU_ASSERT_EQUAL(end, padded);
    size_t once = 0;
    for (size_t e = 0; e < padded; e++)
        once += seen[e] == 1;
    CU_ASSERT_EQUAL(once, padded);
    for (int r = 0; r < dp; r++) {
        size_t state = 0;
        for (size_t i = 0; i < l[r].bucket_count; i++) {
            const tsr_shard_range *o = &l[r].owned[i];
            CU_ASSERT_EQUAL(o->state_offset, even ? state : o->offset);
            state += o->count;
        }
        tsr_param_shard shard = tsr_bucket_layout_shard(&l[r]);
        if (even && dp > 1)
            CU_ASSERT_EQUAL(tsr_shard_state_floats(&shard, n), padded / (size_t)dp);
        tsr_bucket_layout_free(&l[r]);
    }
    free(seen);
}

static void test_buckets_tile_the_buffer_for_every_rank(void)
{
    static const size_t counts[] = {1, 15, 16, 100, 1000, 4097};
    static const int64_t buckets[] = {0, 1, 17, 64, 300, 100000};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (int dp = 1; dp <= 5; dp++)
            for (size_t b = 0; b < sizeof buckets / sizeof buckets[0]; b++) {
                check_layout(counts[c], dp, buckets[b], false);
                check_layout(counts[c], dp, buckets[b], true);
            }
}

static void test_ready_buckets_follow_the_watermark(void)
{
    tsr_bucket_layout l; /* buckets [0,20) [20,120) [120,220) */
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(220, 2, 0, 100, false, &l), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(l.bucket_count, 3);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 220), 0);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 121), 0);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 120), 1);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 50), 1);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 20), 2);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 1), 2);
    CU_ASSERT_EQUAL(tsr_bucket_layout_ready(&l, 0), 3);
    tsr_bucket_layout_free(&l);
}

static void test_too_many_buckets_is_a_clear_error(void)
{
    tsr_bucket_layout l;
    CU_ASSERT_EQUAL(tsr_bucket_layout_compute(10000000, 2, 0, 10, false, &l),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--ddp-bucket-size 10"));
    CU_ASSERT_EQUAL(tsr_bucket_layout_compute(100, 2, 2, 10, false, &l), TSR_ERR_INVALID_ARG);
}

/* --------------------------------------------------------- memory plan */

/* GPT-2 small from its architecture: vocabulary 50257 padded to 50304,
 * 1024 positions, 12 layers of hidden 768 and MLP 3072, LayerNorm with
 * biases, tied output; every tensor is a multiple of 16 floats already. */
static size_t gpt2_parameters(void)
{
    size_t V = 50304, C = 768, P = 1024, F = 3072, L = 12;
    size_t layer = 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (F * C + F) + (C * F + C);
    return V * C + P * C + L * layer + 2 * C;
}

static size_t aligned(size_t bytes)
{
    return (bytes + TSR_ARENA_ALIGN - 1) / TSR_ARENA_ALIGN * TSR_ARENA_ALIGN;
}

static void test_plan_divides_optimizer_memory_by_dp(void)
{
    size_t n = gpt2_parameters();
    CU_ASSERT_EQUAL(n, 124475904u);
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.model = TSR_PRESET_GPT2;
    tsr_config_apply_preset(&cfg);
    static const int dps[] = {1, 2, 4, 8};
    for (size_t i = 0; i < sizeof dps / sizeof dps[0]; i++) {
        for (int dist = 0; dist < 2; dist++) {
            cfg.use_distributed_optimizer = dist;
            tsr_memory_plan plan = {0};
            tsr_trainer_plan_sharded(&cfg, n, dps[i], &plan);
            /* 124475904 is a multiple of 8 x 16: no padding */
            size_t state = dist ? n / (size_t)dps[i] : n;
            CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_OPTIMIZER], 2 * aligned(state * sizeof(float)));
            CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS], 0);
            CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_GRADS], 0);
            if (dist)
                printf("\n  gpt2 dp %d distributed optimizer: %.1f MiB of Adam state per rank",
                       dps[i], (double)plan.bytes[TSR_MEM_OPTIMIZER] / 1048576.0);
        }
    }
}

static void test_plan_pads_params_and_grads_to_the_shard_unit(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.use_distributed_optimizer = true;
    /* 1000 floats end in an arena block of 1008 (64-byte alignment); over
     * 4 ranks the shards need 1024: 16 more floats of each */
    tsr_memory_plan plan = {0};
    tsr_trainer_plan_sharded(&cfg, 1000, 4, &plan);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS], 16 * sizeof(float));
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_GRADS], 16 * sizeof(float));
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_OPTIMIZER], 2 * aligned(256 * sizeof(float)));
    /* over 3 ranks 1008 = 21 x 48: the alignment slack is padding enough */
    memset(&plan, 0, sizeof plan);
    tsr_trainer_plan_sharded(&cfg, 1000, 3, &plan);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS], 0);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_OPTIMIZER], 2 * aligned(336 * sizeof(float)));
    memset(&plan, 0, sizeof plan);
    cfg.use_distributed_optimizer = false;
    tsr_trainer_plan_sharded(&cfg, 1000, 4, &plan);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS], 0);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_OPTIMIZER], 2 * aligned(1000 * sizeof(float)));
    CU_ASSERT_EQUAL(tsr_shard_padded_count(1000, 1), 1000);
    CU_ASSERT_EQUAL(tsr_shard_padded_count(1000, 4), 1024);
    CU_ASSERT_EQUAL(tsr_shard_padded_count(1024, 4), 1024);
}

/* ----------------------------------------------------------- optimizer */

#define N 300

typedef struct toy {
    float params[N], grads[N];
    tsr_param_span spans[4];
    tsr_tensor_desc tensors[3];
    tsr_model model;
} toy;

/* Three tensors, the middle one not ours to write (another TP replica's),
 * a gap between them, spans alternating weight decay. */
static void toy_init(toy *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < N; i++) {
        t->params[i] = 0.01f * (float)((i * 37) % 101) - 0.5f;
        t->grads[i] = 0.002f * (float)((i * 53) % 89) - 0.09f;
    }
    t->spans[0] = (tsr_param_span){0, 70, true, false};
    t->spans[1] = (tsr_param_span){70, 90, false, false};
    t->spans[2] = (tsr_param_span){160, 100, true, false};
    t->spans[3] = (tsr_param_span){260, 40, false, false};
    t->tensors[0] = (tsr_tensor_desc){"a", 10, 7, 0, 10, 0, 7, 0, true, false, false, 0};     /* [0, 70) */
    t->tensors[1] = (tsr_tensor_desc){"b", 90, 1, 0, 90, 0, 1, 80, false, false, false, 0};   /* [80, 170) */
    t->tensors[2] = (tsr_tensor_desc){"c", 20, 9, 0, 12, 3, 5, 200, true, false, false, 0};   /* [200, 260) */
    t->model = (tsr_model){.self = t,
                           .params = t->params,
                           .grads = t->grads,
                           .param_count = N,
                           .spans = t->spans,
                           .span_count = 4,
                           .tensors = t->tensors,
                           .tensor_count = 3};
}

static bool counted(size_t e)
{
    return e < 70 || (e >= 200 && e < 260);
}

static void test_grad_sumsq_counts_owned_writer_blocks(void)
{
    toy t;
    toy_init(&t);
    tsr_shard_range ranges[3] = {{5, 60, 0}, {150, 60, 60}, {255, 30, 120}};
    tsr_param_shard shard = {ranges, 3, true};
    double want = 0.0, all = 0.0;
    for (size_t e = 0; e < N; e++) {
        bool owned = (e >= 5 && e < 65) || (e >= 150 && e < 210) || (e >= 255 && e < 285);
        double g2 = (double)t.grads[e] * (double)t.grads[e];
        if (owned && counted(e))
            want += g2;
        if (counted(e))
            all += g2;
    }
    TSR_ASSERT_REL(tsr_optimizer_grad_sumsq(&t.model, &shard), want, 1e-12);
    TSR_ASSERT_REL(tsr_optimizer_grad_sumsq(&t.model, NULL), all, 1e-12);
    t.model.tensors = NULL; /* no table: every owned element */
    double plain = 0.0;
    for (size_t e = 5; e < 65; e++)
        plain += (double)t.grads[e] * (double)t.grads[e];
    for (size_t e = 150; e < 210; e++)
        plain += (double)t.grads[e] * (double)t.grads[e];
    for (size_t e = 255; e < 285; e++)
        plain += (double)t.grads[e] * (double)t.grads[e];
    TSR_ASSERT_REL(tsr_optimizer_grad_sumsq(&t.model, &shard), plain, 1e-12);
}

/* Three "ranks" each update their slices with packed moments; together
 * they must give, bit for bit, what one rank computes on the whole buffer,
 * step after step (AdamW is elementwise, decay per span). */
static void test_sharded_adamw_equals_whole_buffer(void)
{
    toy whole, part;
    toy_init(&whole);
    toy_init(&part);
    float m[N] = {0}, v[N] = {0};
    float pm[3][N], pv[3][N];
    memset(pm, 0, sizeof pm);
    memset(pv, 0, sizeof pv);
    tsr_bucket_layout l[3];
    for (int r = 0; r < 3; r++)
        CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(N, 3, r, 50, true, &l[r]), TSR_OK);
    /* padded past N: the slices there hold no span, so nothing touches them */
    CU_ASSERT_EQUAL_FATAL(l[0].padded_count, 336);
    CU_ASSERT_EQUAL_FATAL(l[0].bucket_count, 4);
    for (int64_t step = 1; step <= 3; step++) {
        tsr_adamw_args a = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.7f};
        tsr_optimizer_adamw(&whole.model, NULL, NULL, m, v, &a);
        for (int r = 0; r < 3; r++) {
            tsr_param_shard shard = tsr_bucket_layout_shard(&l[r]);
            tsr_optimizer_adamw(&part.model, &shard, NULL, pm[r], pv[r], &a);
        }
    }
    CU_ASSERT_EQUAL(memcmp(whole.params, part.params, sizeof whole.params), 0);
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < l[r].bucket_count; i++) {
            const tsr_shard_range *o = &l[r].owned[i];
            size_t end = o->offset + o->count < N ? o->offset + o->count : N;
            for (size_t e = o->offset; e < end; e++) {
                CU_ASSERT_EQUAL(pm[r][o->state_offset + e - o->offset], m[e]);
                CU_ASSERT_EQUAL(pv[r][o->state_offset + e - o->offset], v[e]);
            }
        }
        tsr_bucket_layout_free(&l[r]);
    }
    toy start;
    toy_init(&start);
    int moved = 0; /* all but those whose parameter and gradient are both 0 */
    for (int i = 0; i < N; i++)
        moved += whole.params[i] != start.params[i];
    CU_ASSERT_TRUE(moved >= N - 3);
}

/* ------------------------------------------------- checkpoint selection */

static void test_flat_ranges_become_at_most_three_boxes(void)
{
    /* a 4 x 5 block at (2, 10) of a larger matrix */
    tsr_tensor_desc t = {"w", 10, 30, 2, 4, 10, 5, 0, true, false, false, 0};
    tsr_checkpoint_box b[3];
    /* elements 3..16: row 0 cols 3-4, rows 1-2 whole, row 3 cols 0-1 */
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_range_boxes(&t, 3, 17, b), 3);
    CU_ASSERT_TRUE(b[0].row == 2 && b[0].col == 13 && b[0].rows == 1 && b[0].cols == 2);
    CU_ASSERT_TRUE(b[1].row == 3 && b[1].col == 10 && b[1].rows == 2 && b[1].cols == 5);
    CU_ASSERT_TRUE(b[2].row == 5 && b[2].col == 10 && b[2].rows == 1 && b[2].cols == 2);
    /* whole block: one box */
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_range_boxes(&t, 0, 20, b), 1);
    CU_ASSERT_TRUE(b[0].row == 2 && b[0].col == 10 && b[0].rows == 4 && b[0].cols == 5);
    /* inside one row */
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_range_boxes(&t, 6, 8, b), 1);
    CU_ASSERT_TRUE(b[0].row == 3 && b[0].col == 11 && b[0].rows == 1 && b[0].cols == 2);
    /* partial first row then whole rows to the end */
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_range_boxes(&t, 4, 20, b), 2);
    CU_ASSERT_TRUE(b[0].row == 2 && b[0].col == 14 && b[0].rows == 1 && b[0].cols == 1);
    CU_ASSERT_TRUE(b[1].row == 3 && b[1].col == 10 && b[1].rows == 3 && b[1].cols == 5);
    /* two partial rows, nothing whole between */
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_range_boxes(&t, 9, 11, b), 2);
    CU_ASSERT_TRUE(b[0].row == 3 && b[0].col == 14 && b[0].cols == 1);
    CU_ASSERT_TRUE(b[1].row == 4 && b[1].col == 10 && b[1].cols == 1);
    /* a vector: always one run of rows */
    tsr_tensor_desc vec = {"b", 64, 1, 32, 32, 0, 1, 0, true, false, false, 0};
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_range_boxes(&vec, 5, 30, b), 1);
    CU_ASSERT_TRUE(b[0].row == 37 && b[0].rows == 25 && b[0].col == 0 && b[0].cols == 1);
}

static const tsr_test_case bucket_cases[] = {
    TSR_TEST(test_bucket_table_by_hand),
    TSR_TEST(test_expert_region_by_hand),
    TSR_TEST(test_buckets_tile_the_buffer_for_every_rank),
    TSR_TEST(test_ready_buckets_follow_the_watermark),
    TSR_TEST(test_too_many_buckets_is_a_clear_error),
};

static const tsr_test_case plan_cases[] = {
    TSR_TEST(test_plan_divides_optimizer_memory_by_dp),
    TSR_TEST(test_plan_pads_params_and_grads_to_the_shard_unit),
};

static const tsr_test_case optimizer_cases[] = {
    TSR_TEST(test_grad_sumsq_counts_owned_writer_blocks),
    TSR_TEST(test_sharded_adamw_equals_whole_buffer),
    TSR_TEST(test_flat_ranges_become_at_most_three_boxes),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("grad buckets", bucket_cases),
                                     TSR_SUITE("memory plan", plan_cases),
                                     TSR_SUITE("optimizer shards", optimizer_cases)};
    return tsr_test_main(suites, 3);
}
