/*
 * test_optimizer_cuda.c - the optimizer step on the GPU (train/
 * optimizer_cuda.h) against the CPU's (train/optimizer.h), on
 * optimizer_case.h's model with device copies of its buffers. Exits 77
 * (skipped) where no GPU is visible.
 *   - the sum of squares, sharded and for one rank owning everything,
 *     within 1e-12 relative of tsr_optimizer_grad_sumsq (each piece in
 *     double; the pieces added in the same order);
 *   - three AdamW steps with the sharded state, into the model's params
 *     and into an fp32 master: weights, m and v within 1e-6 relative of
 *     the CPU's (the device rounds each operation, the CPU may fuse),
 *     the elements outside the ranges bitwise untouched;
 *   - a missing partials buffer refused, naming what is needed.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

#include "cuda_check.h"
#include "harness.h"
#include "optimizer_case.h"
#include "train/optimizer_cuda.h"

#define SUMSQ_TOL 1e-12
#define ADAMW_TOL 1e-6

static void fill(float *params, float *grads)
{
    for (int i = 0; i < OC_PARAMS; i++) {
        params[i] = 0.5f - 0.001f * (float)i;
        grads[i] = 0.02f * (float)(i % 13) - 0.1f;
    }
}

static void test_sumsq_against_cpu(void)
{
    float params[OC_PARAMS], grads[OC_PARAMS];
    fill(params, grads);
    optimizer_case c;
    oc_make(&c, params, grads);
    tsr_model dev = c.model;
    dev.params = cc_dev_floats(params, OC_PARAMS);
    dev.grads = cc_dev_floats(grads, OC_PARAMS);
    void *ws = cc_dev_from(NULL, tsr_cuda_optimizer_workspace_bytes());
    double *partials = cc_dev_from(NULL, 8 * sizeof(double)), host[8];
    const tsr_param_shard *shards[] = {&c.sharded, NULL};
    for (int s = 0; s < 2; s++) {
        double want = tsr_optimizer_grad_sumsq(&c.model, shards[s]), got = -1.0;
        CU_ASSERT_TRUE(tsr_optimizer_norm_piece_count(&c.model, shards[s]) <= 8);
        CU_ASSERT_EQUAL(tsr_cuda_optimizer_grad_sumsq(&dev, shards[s], ws, partials, host, &got,
                                                      cc_stream()),
                        TSR_OK);
        CU_ASSERT_TRUE(fabs(got - want) <= SUMSQ_TOL * want);
    }
    double got = 0.0;
    CU_ASSERT_EQUAL(tsr_cuda_optimizer_grad_sumsq(&dev, &c.sharded, ws, NULL, host, &got,
                                                  cc_stream()),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "2 device partials"));
    void *devs[] = {dev.params, dev.grads, ws, partials};
    cc_free(devs, 4, NULL, 0);
}

static void adamw_case(bool with_master)
{
    float params[OC_PARAMS], grads[OC_PARAMS], master[650];
    fill(params, grads);
    for (int i = 0; i < 650; i++)
        master[i] = 0.25f + 0.002f * (float)i;
    optimizer_case c;
    oc_make(&c, params, grads);
    float m[650] = {0}, v[650] = {0};
    tsr_model dev = c.model;
    dev.params = cc_dev_floats(params, OC_PARAMS);
    dev.grads = cc_dev_floats(grads, OC_PARAMS);
    float *d_m = cc_dev_floats(m, 650), *d_v = cc_dev_floats(v, 650);
    float *d_master = with_master ? cc_dev_floats(master, 650) : NULL;
    for (int64_t step = 1; step <= 3; step++) {
        tsr_adamw_args a = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f};
        tsr_optimizer_adamw(&c.model, &c.sharded, with_master ? master : NULL, m, v, &a);
        CU_ASSERT_EQUAL(tsr_cuda_optimizer_adamw(&dev, &c.sharded, d_master, d_m, d_v, &a,
                                                 cc_stream()),
                        TSR_OK);
    }
    float got[OC_PARAMS];
    const char *what = with_master ? "master" : "params";
    if (with_master) {
        cc_floats_to_host(got, d_master, 650);
        cc_expect_close(what, 1, 650, got, master, 650, ADAMW_TOL, 1e-3);
        cc_floats_to_host(got, dev.params, OC_PARAMS); /* the view is not the optimizer's */
        cc_expect_bits("params beside a master", 1, OC_PARAMS, got, params,
                       sizeof(float) * OC_PARAMS);
    } else {
        cc_floats_to_host(got, dev.params, OC_PARAMS);
        cc_expect_close(what, 1, OC_PARAMS, got, params, OC_PARAMS, ADAMW_TOL, 1e-3);
        size_t outside = 0; /* never updated under the sharded state */
        for (int i = 0; i < OC_PARAMS; i++)
            outside += (i < 100 || (i >= 500 && i < 600) || i >= 850) && got[i] != params[i];
        CU_ASSERT_EQUAL(outside, 0u);
    }
    cc_floats_to_host(got, d_m, 650);
    cc_expect_close("m", 1, 650, got, m, 650, ADAMW_TOL, 1e-3);
    cc_floats_to_host(got, d_v, 650);
    cc_expect_close("v", 1, 650, got, v, 650, ADAMW_TOL, 1e-6);
    void *devs[] = {dev.params, dev.grads, d_m, d_v, d_master};
    cc_free(devs, with_master ? 5 : 4, NULL, 0);
}

static void test_adamw_against_cpu(void)
{
    adamw_case(false);
    adamw_case(true);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_sumsq_against_cpu),
    TSR_TEST(test_adamw_against_cpu),
    TSR_TEST(cc_test_device_clean),
};

int main(void)
{
    return cc_main("cuda_optimizer", cases, sizeof cases / sizeof cases[0]);
}
