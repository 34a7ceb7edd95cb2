/*
 * test_time_model.c - the time model (launcher/time_model.h) against
 * numbers worked out by hand, and the machine files (machine.h): presets,
 * a file written and read back, and bad files refused with a message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "machine.h"
#include "tessera/log.h"
#include "time_model.h"

/* 8 devices a node; round numbers so that every term is checkable */
static tsr_machine toy(void)
{
    tsr_machine m = {.name = "toy",
                     .devices_per_node = 8,
                     .threads_per_device = 1,
                     .gemm_flops = 1e12,
                     .memory_bandwidth = 1e11,
                     .intra_bandwidth = 1e10,
                     .intra_latency = 1e-6,
                     .inter_bandwidth = 1e9,
                     .inter_latency = 1e-5};
    return m;
}

static tsr_time_inputs base_inputs(void)
{
    tsr_time_inputs in;
    memset(&in, 0, sizeof in);
    in.tp = in.pp = in.dp = in.ep = 1;
    in.threads = 1;
    in.ranks_per_node = 1;
    in.flops_per_iteration = 8e12;
    in.microbatches = 4;
    in.micro_batch = 2;
    in.seq = 1024;
    in.hidden = 1024;
    in.layers_per_stage = 8;
    in.params_per_device = 1e8;
    in.activation_bytes = 1e9;
    return in;
}

static void near(double got, double want)
{
    CU_ASSERT_DOUBLE_EQUAL(got, want, 1e-9 * fabs(want) + 1e-15);
}

static void test_one_device_is_compute_and_memory(void)
{
    tsr_machine m = toy();
    tsr_time_inputs in = base_inputs();
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    near(t.compute, 8.0);                    /* 8e12 / 1e12 */
    near(t.elementwise, 3 * 1e9 * 4 / 1e11); /* 0.12 */
    CU_ASSERT_EQUAL(t.tp + t.pp + t.ep + t.dp + t.bubble, 0.0);
    near(t.total, 8.12);
}

static void test_collectives_on_their_links(void)
{
    tsr_machine m = toy();
    tsr_time_inputs in = base_inputs();
    in.tp = 4; /* within a node */
    in.dp = 4; /* 16 devices: dp ranks 4 apart span two nodes */
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    double stream = 2.0 * 1024 * 1024 * 4; /* B T C floats */
    double ring_tp = 2.0 * 3 / 4 * stream / 1e10 + 6 * 1e-6;
    near(t.tp, 4.0 * 8 * 4 * ring_tp);              /* 4 per layer, 8 layers, 4 micro batches */
    near(t.dp, 2.0 * 3 / 4 * 4e8 / 1e9 + 6 * 1e-5); /* 1e8 floats over the inter-node link */
    near(t.compute, 8.0 / 16);
    near(tsr_time_ring(100.0, 1, 1.0, 1.0), 0.0);
}

static void test_pipeline_and_recomputation(void)
{
    tsr_machine m = toy();
    tsr_time_inputs in = base_inputs();
    in.pp = 2;
    in.tp = 2;
    in.sp = true;
    in.recompute = true;
    in.bubble = 0.2;
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    double stream = 2.0 * 1024 * 1024 * 4;
    near(t.compute, 8e12 * 4 / 3 / 4 / 1e12);
    near(t.tp, 6.0 * 8 * 4 * (2.0 * 1 / 2 * stream / 1e10 + 2 * 1e-6));
    near(t.pp, 2.0 * 4 * (stream / 2 / 1e10 + 1e-6)); /* SP: a tp share crosses */
    near(t.elementwise, 4 * 1e9 * 4 / 1e11);          /* the forward runs again */
    double stage = t.compute + t.elementwise + t.tp + t.pp;
    near(t.bubble, stage / 0.8 - stage);
    near(t.total, stage / 0.8);
}

/* 16 devices, dp 4 across nodes: the gradients' ring, what overlap hides
 * of it, the distributed optimizer's halves and the precision's bytes. */
static void test_data_parallel_overlap_and_precision(void)
{
    tsr_machine m = toy();
    tsr_time_inputs in = base_inputs();
    in.tp = 4;
    in.dp = 4;
    tsr_time_prediction plain, t;
    tsr_time_predict(&m, &in, &plain);
    double reduce = 2.0 * 3 / 4 * 4e8 / 1e9 + 6e-5; /* 1e8 fp32 gradients */
    near(plain.dp, reduce);
    near(plain.dp_hidden, 0.0);
    double per_micro = (plain.compute + plain.elementwise + plain.tp) / 4;

    in.overlap_grad_reduce = true; /* hidden behind the last backward, but the last bucket */
    in.bucket_elements = 1e7;
    tsr_time_predict(&m, &in, &t);
    double last = 2.0 * 3 / 4 * 4e7 / 1e9 + 6e-5;
    double hidden = fmin(reduce - last, 2.0 / 3 * per_micro);
    near(t.dp, reduce - hidden);
    near(t.dp + t.dp_hidden, reduce);
    CU_ASSERT_TRUE(t.dp < plain.dp && t.dp >= last);
    in.bucket_elements = 0; /* one bucket: ready only when backward ends */
    tsr_time_predict(&m, &in, &t);
    near(t.dp, reduce);

    in = base_inputs();
    in.tp = 4;
    in.dp = 4;
    in.distributed_optimizer = true; /* reduce-scatter + all-gather: the same bytes in fp32 */
    tsr_time_predict(&m, &in, &t);
    near(t.dp, reduce);
    tsr_time_inputs bf16 = in; /* bf16 parameters gathered, fp32 gradients scattered */
    bf16.element_bytes = 2;
    bf16.grad_bytes = 4;
    bf16.overlap_param_gather = true;
    tsr_time_predict(&m, &bf16, &t);
    double gather = (2.0 * 3 / 4 * 2e8 / 1e9 + 6e-5) / 2;
    double bf16_micro = (t.compute + t.elementwise + t.tp) / 4;
    near(t.dp, reduce / 2 + fmax(gather - bf16_micro / 3, 0.0));
    double stream = 2.0 * 1024 * 1024 * 2; /* B T C bf16 elements */
    near(t.tp, 4.0 * 8 * 4 * (2.0 * 3 / 4 * stream / 1e10 + 6 * 1e-6));
}

static void test_experts_and_shared_cores(void)
{
    tsr_machine m = toy();
    tsr_time_inputs in = base_inputs();
    in.dp = 4;
    in.ep = 4;
    in.topk = 2;
    in.moe_layers_per_stage = 4;
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    double rows = 2.0 * 1024 * 2 * 1024 * 4; /* B T k C floats */
    near(t.ep, 4.0 * 4 * 4 * (rows * 3 / 4 / 1e10 + 3 * 1e-6));
    double even_compute = t.compute, even_ep = t.ep;
    /* the busiest rank of each exchange at 1.5 x an even share: its routed
     * products (one of 1024 x 1024 -> 2048, 2 local experts x 4 layers,
     * at 1e12: forward, input and weight gradients) take half as long
     * again per micro batch, and its exchanges too; a product not routed
     * (the router) does not */
    in.gemms = 2;
    in.gemm[0] = (tsr_time_gemm){1024, 1024, 2048, 8, true};
    in.gemm[1] = (tsr_time_gemm){2048, 1024, 4, 4, false};
    in.expert_load = 1.5;
    tsr_time_predict(&m, &in, &t);
    near(t.compute, even_compute + 0.5 * 3 * 2.0 * 1024 * 1024 * 2048 * 8 / 1e12 * 4);
    near(t.ep, 1.5 * even_ep);
    in.expert_load = 0.75; /* below an even share (assignments dropped): less */
    tsr_time_predict(&m, &in, &t);
    near(t.compute, even_compute - 0.25 * 3 * 2.0 * 1024 * 1024 * 2048 * 8 / 1e12 * 4);
    near(t.ep, 0.75 * even_ep);
    in.expert_load = 0.0; /* not measured: even */
    tsr_time_predict(&m, &in, &t);
    near(t.compute, even_compute);
    near(t.ep, even_ep);
    /* 4 ranks of 2 threads on 4 cores: half the calibrated one-thread rate x 2 */
    m.cores_per_node = 4;
    in = base_inputs();
    in.threads = 2;
    in.ranks_per_node = 4;
    tsr_time_predict(&m, &in, &t);
    near(t.compute, 8.0 / (2 * 0.5));
}

static void test_context_parallel(void)
{
    tsr_machine m = toy();
    tsr_time_inputs in = base_inputs();
    in.cp = 2;
    in.dp = 2;
    in.cp_elements = 1e8;  /* K and V of a rank's chunk of one layer, 4-byte elements */
    in.other_flops = 8e9;  /* the stage's attention scores, 1e9 a layer */
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    near(t.compute, 8e12 / 4 / 1e12); /* tp x cp x pp x dp = 4 devices */
    /* 3 ring steps a layer (forward, and K V with dK dV in backward) of
     * 4e8 bytes on NVLink, less the layer's attention, 3 x 1e9 / 1e12 */
    double ring = 3 * (4e8 / 1e10 + 1e-6), attention = 3 * 1e9 / 1e12;
    near(t.cp, (ring - attention) * 8 * 4);
    /* the gradients are reduced over dp x cp = 4 ranks */
    near(t.dp, 2.0 * 3 / 4 * 1e8 * 4 / 1e10 + 6 * 1e-6);
    in.recompute = true; /* the forward's ring and attention again */
    tsr_time_predict(&m, &in, &t);
    near(t.cp, (4 * (4e8 / 1e10 + 1e-6) - 4 * 1e9 / 1e12) * 8 * 4);
    in.recompute = false;
    in.other_flops = 1e12; /* attention longer than the ring: all of it hidden */
    tsr_time_predict(&m, &in, &t);
    near(t.cp, 0.0);
    in.cp = 16; /* 16 x dp 2 = 32 devices span nodes of 8: the network's link */
    in.other_flops = 8e9;
    tsr_time_predict(&m, &in, &t);
    near(t.cp, (45 * (4e8 / 1e9 + 1e-5) - attention) * 8 * 4);
}

/* A calibrated CPU machine: GEMM rates by threads and the all-reduce's
 * bus bandwidth by size, preferred to the single figures. */
static tsr_machine measured(void)
{
    tsr_machine m = toy();
    m.cores_per_node = 8;
    m.gemm_points = 2;
    m.gemm_threads[0] = 1;
    m.gemm_rates[0] = 1e11;
    m.gemm_threads[1] = 4;
    m.gemm_rates[1] = 2.5e11;
    m.curves = 1;
    tsr_link_curve c = {.ranks = 2, .points = 2, .bytes = {1e5, 1e7}, .busbw = {1e9, 1e10}};
    m.intra_curves[0] = c;
    return m;
}

static void test_measured_curves(void)
{
    tsr_machine m = measured();
    near(tsr_time_gemm_rate(&m, 1), 1e11);
    near(tsr_time_gemm_rate(&m, 2), 1e11 + 1.5e11 / 3); /* linear between 1 and 4 */
    near(tsr_time_gemm_rate(&m, 8), 5e11);              /* proportional beyond */
    tsr_time_inputs in = base_inputs();
    in.tp = 2;
    in.threads = 2;
    in.ranks_per_node = 2;
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    near(t.compute, 8e12 / 2 / tsr_time_gemm_rate(&m, 2));
    double stream = 2.0 * 1024 * 1024 * 4;
    double f = log(stream / 1e5) / log(100.0);
    double busbw = 1e9 + f * 9e9; /* linear in log size */
    near(t.tp, 4.0 * 8 * 4 * (stream / busbw));
    in.tp = 1; /* below the smallest size: the smallest's bandwidth and the latency */
    in.dp = 2;
    in.params_per_device = 1e4;
    tsr_time_predict(&m, &in, &t);
    near(t.dp, 4e4 / 1e9 + 2 * 1e-6);
    m.curves = 0; /* without curves, the link's figures */
    tsr_time_predict(&m, &in, &t);
    near(t.dp, tsr_time_ring(4e4, 2, 1e10, 1e-6));
}

/* A 2 x 2 grid: 100 and 10000 rows, widths 10 and 1000; rates in GFLOP/s
 * 10, 40 (100 rows) and 20, 80 (10000 rows), measured with 4 threads. */
static tsr_gemm_grid grid_2x2(void)
{
    tsr_gemm_grid g = {.threads = 4, .rows_points = 2, .width_points = 2};
    g.rows[0] = 100, g.rows[1] = 10000, g.width[0] = 10, g.width[1] = 1000;
    g.flops[0][0] = 1e10, g.flops[0][1] = 4e10, g.flops[1][0] = 2e10, g.flops[1][1] = 8e10;
    return g;
}

static void test_gemm_by_shape(void)
{
    tsr_machine m = toy(); /* a GPU: the rate by threads is gemm_flops, 1e12 */
    near(tsr_time_gemm_shape_rate(&m, 1, 1000, 100, 100), 1e12); /* no grid */
    m.gemm_grid = grid_2x2();
    /* the grid's own rates (its share of 1e12 times 1e12), then bilinear in logs:
     * 1000 rows and width 100 are half way on both: 10 + 15 = 25, 20 + 30 = 50 -> 37.5 */
    near(tsr_time_gemm_shape_rate(&m, 1, 100, 10, 10), 1e10);
    near(tsr_time_gemm_shape_rate(&m, 1, 10000, 1000, 1000), 8e10);
    near(tsr_time_gemm_shape_rate(&m, 1, 1000, 100, 100), 3.75e10);
    near(tsr_time_gemm_shape_rate(&m, 1, 1000, 10, 1000), 3.75e10); /* width sqrt(k n) */
    near(tsr_time_gemm_shape_rate(&m, 1, 10, 1, 1), 1e10);          /* the edges beyond */
    near(tsr_time_gemm_shape_rate(&m, 1, 1e6, 1e4, 1e4), 8e10);

    /* on the thread curve of measured() (1e11 at 1, 2.5e11 at 4 threads):
     * with 2 threads 1.5e11, x the shape's share of the 4-thread rate */
    tsr_machine c = measured();
    c.gemm_grid = grid_2x2();
    near(tsr_time_gemm_shape_rate(&c, 2, 1000, 100, 100), 1.5e11 * 3.75e10 / 2.5e11);

    /* compute: one product of 1000 x 100 -> 100 (2e7 FLOPs, 3 layers) and
     * 1e7 FLOPs of scores a forward. Forward and input gradient at 3.75e10;
     * the weight gradient, 100 rows of width sqrt(100 x 1000), 3/4 of the
     * way in log width: 10 + 0.75 x 30 = 32.5 GFLOP/s; scores at 1e12. */
    tsr_time_inputs in = base_inputs();
    in.gemms = 1;
    in.gemm[0] = (tsr_time_gemm){1000, 100, 100, 3, false};
    in.other_flops = 1e7;
    double f = 2.0 * 1000 * 100 * 100 * 3;
    double per_flop = (2 * f / 3.75e10 + f / 3.25e10 + 3 * 1e7 / 1e12) / (3 * f + 3 * 1e7);
    tsr_time_prediction t;
    tsr_time_predict(&m, &in, &t);
    near(t.compute, 8e12 * per_flop);
    in.recompute = true; /* the forward again, at the forward's rate */
    tsr_time_predict(&m, &in, &t);
    per_flop = (3 * f / 3.75e10 + f / 3.25e10 + 4 * 1e7 / 1e12) / (4 * f + 4 * 1e7);
    near(t.compute, 8e12 * 4 / 3 * per_flop);
    m.gemm_grid.rows_points = 0; /* without a grid the products change nothing */
    tsr_time_predict(&m, &in, &t);
    near(t.compute, 8e12 * 4 / 3 / 1e12);
}

static void test_presets_and_files(void)
{
    tsr_machine m;
    CU_ASSERT_EQUAL_FATAL(tsr_machine_load("dgx-a100", &m), TSR_OK);
    CU_ASSERT_EQUAL(m.devices_per_node, 8);
    CU_ASSERT_TRUE(m.gemm_flops > 1e14 && m.inter_bandwidth < m.intra_bandwidth);
    CU_ASSERT_EQUAL(tsr_machine_load("dgx-h100", &m), TSR_OK);
    char path[] = "/tmp/tsr_machine_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    close(fd);
    tsr_machine w = toy();
    w.cores_per_node = 2;
    w.threads_per_device = 2;
    CU_ASSERT_EQUAL_FATAL(tsr_machine_save(&w, path), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_machine_load(path, &m), TSR_OK);
    CU_ASSERT_STRING_EQUAL(m.name, "toy");
    CU_ASSERT_EQUAL(m.cores_per_node, 2);
    CU_ASSERT_EQUAL(m.threads_per_device, 2);
    near(m.inter_latency, 1e-5);
    near(m.gemm_flops, 1e12);
    CU_ASSERT_EQUAL(m.gemm_points, 0);
    w = measured();
    CU_ASSERT_EQUAL_FATAL(tsr_machine_save(&w, path), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_machine_load(path, &m), TSR_OK);
    CU_ASSERT_EQUAL(m.gemm_points, 2);
    CU_ASSERT_EQUAL(m.gemm_threads[1], 4);
    near(m.gemm_rates[1], 2.5e11);
    CU_ASSERT_EQUAL(m.curves, 1);
    CU_ASSERT_EQUAL(m.intra_curves[0].ranks, 2);
    CU_ASSERT_EQUAL(m.intra_curves[0].points, 2);
    near(m.intra_curves[0].bytes[1], 1e7);
    near(m.intra_curves[0].busbw[0], 1e9);
    CU_ASSERT_EQUAL(m.gemm_grid.rows_points, 0); /* absent: none */
    w.gemm_grid = grid_2x2();
    CU_ASSERT_EQUAL_FATAL(tsr_machine_save(&w, path), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_machine_load(path, &m), TSR_OK);
    CU_ASSERT_EQUAL(m.gemm_grid.threads, 4);
    CU_ASSERT_EQUAL(m.gemm_grid.rows_points, 2);
    CU_ASSERT_EQUAL(m.gemm_grid.width_points, 2);
    near(m.gemm_grid.rows[1], 10000);
    near(m.gemm_grid.width[1], 1000);
    near(m.gemm_grid.flops[1][0], 2e10);
    static const char *const bad[] = {
        "{\"devices_per_node\": 8}", /* rates missing */
        "[1, 2]",                    /* not an object */
        "{\"gemm_flops\": -1}",      /* negative */
        "not json",
    };
    static const char *const rates = "\"gemm_flops\": 1, \"memory_bandwidth\": 1, "
                                     "\"intra_node_bandwidth\": 1, \"intra_node_latency\": 1, "
                                     "\"inter_node_bandwidth\": 1, \"inter_node_latency\": 1, "
                                     "\"devices_per_node\": 2";
    static const char *const bad_curves[] = {
        "\"gemm_by_threads\": [{\"threads\": 2, \"flops\": 1}, {\"threads\": 1, \"flops\": 1}]",
        "\"gemm_by_threads\": {\"threads\": 1}",
        "\"allreduce_busbw\": [{\"ranks\": 2, \"bytes\": [2, 1], \"busbw\": [1, 1]}]",
        "\"allreduce_busbw\": [{\"ranks\": 2, \"bytes\": [1, 2], \"busbw\": [1]}]",
        "\"allreduce_busbw\": [{\"ranks\": 1, \"bytes\": [1], \"busbw\": [1]}]",
        "\"gemm_by_shape\": {\"threads\": 1, \"rows\": [2, 1], \"width\": [1], "
        "\"flops\": [[1], [1]]}",
        "\"gemm_by_shape\": {\"threads\": 1, \"rows\": [1, 2], \"width\": [1, 2], "
        "\"flops\": [[1, 1], [1]]}",
        "\"gemm_by_shape\": {\"threads\": 1, \"rows\": [1], \"width\": [1], "
        "\"flops\": [[-1]]}",
        "\"gemm_by_shape\": {\"rows\": [1], \"width\": [1], \"flops\": [[1]]}",
        "\"gemm_by_shape\": [1]",
    };
    for (size_t i = 0; i < sizeof bad_curves / sizeof bad_curves[0]; i++) {
        FILE *f = fopen(path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fprintf(f, "{%s, %s}", rates, bad_curves[i]);
        fclose(f);
        CU_ASSERT_EQUAL(tsr_machine_load(path, &m), TSR_ERR_INVALID_ARG);
        const char *field = i < 2 ? "gemm_by_threads" : i < 5 ? "allreduce_busbw" : "gemm_by_shape";
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), field));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(bad[i], f);
        fclose(f);
        CU_ASSERT_EQUAL(tsr_machine_load(path, &m), TSR_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), path));
    }
    remove(path);
    CU_ASSERT_EQUAL(tsr_machine_load("/nonexistent/cluster.json", &m), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "dgx-a100"));
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_one_device_is_compute_and_memory),
    TSR_TEST(test_collectives_on_their_links),
    TSR_TEST(test_pipeline_and_recomputation),
    TSR_TEST(test_data_parallel_overlap_and_precision),
    TSR_TEST(test_experts_and_shared_cores),
    TSR_TEST(test_measured_curves),
    TSR_TEST(test_gemm_by_shape),
    TSR_TEST(test_context_parallel),
    TSR_TEST(test_presets_and_files),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("time model", cases)};
    return tsr_test_main(suites, 1);
}
