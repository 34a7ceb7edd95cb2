/*
 * matmul_bf16_absent.c - matmul_bf16.h where CMake found no oneDNN:
 * --bf16 is refused with the reason, and the linear kernels stay fp32.
 */
#include <stdio.h>

#include "kernels/matmul_bf16.h"
#include "tessera/kernels.h"

static const char *const absent =
    "this tessera was built without oneDNN, which --bf16's matrix products need: install "
    "libdnnl-dev (scripts/install-deps.sh does) and rebuild";

bool tsr_matmul_bf16_supported(char *why, size_t why_size)
{
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "%s", absent);
    return false;
}

const char *tsr_matmul_bf16_impl(const tsr_matmul_bf16 *ctx)
{
    (void)ctx;
    return "";
}

size_t tsr_matmul_bf16_workspace_bytes(size_t operand_floats)
{
    (void)operand_floats;
    return 0;
}

tsr_status tsr_matmul_bf16_create(void *workspace, size_t operand_floats, tsr_matmul_bf16 **out)
{
    (void)workspace;
    (void)operand_floats;
    *out = NULL;
    return tsr_error_set(TSR_ERR_UNSUPPORTED, "%s", absent);
}

void tsr_matmul_bf16_destroy(tsr_matmul_bf16 *ctx)
{
    (void)ctx;
}

tsr_status tsr_matmul_bf16_map(tsr_matmul_bf16 *ctx, const float *master, uint16_t *copy,
                               size_t count)
{
    (void)ctx;
    (void)master;
    (void)copy;
    (void)count;
    return tsr_error_set(TSR_ERR_UNSUPPORTED, "%s", absent);
}

void tsr_matmul_bf16_refresh(tsr_matmul_bf16 *ctx)
{
    (void)ctx;
}

tsr_status tsr_matmul_bf16_take_status(tsr_matmul_bf16 *ctx)
{
    (void)ctx;
    return TSR_OK;
}

void tsr_matmul_bf16_activate(tsr_matmul_bf16 *ctx)
{
    (void)ctx;
}

tsr_matmul_bf16 *tsr_matmul_bf16_active(void)
{
    return NULL;
}

bool tsr_linear_is_bf16(void)
{
    return false;
}

void tsr_matmul_bf16_linear_forward(tsr_matmul_bf16 *ctx, float *out, const float *inp,
                                    const float *weight, int64_t n, int64_t in_features,
                                    int64_t out_features, bool accumulate)
{
    (void)ctx, (void)out, (void)inp, (void)weight, (void)n, (void)in_features;
    (void)out_features, (void)accumulate;
}

void tsr_matmul_bf16_linear_backward(tsr_matmul_bf16 *ctx, float *dinp, float *dweight,
                                     const float *dout, const float *inp, const float *weight,
                                     int64_t n, int64_t in_features, int64_t out_features)
{
    (void)ctx, (void)dinp, (void)dweight, (void)dout, (void)inp, (void)weight, (void)n;
    (void)in_features, (void)out_features;
}
