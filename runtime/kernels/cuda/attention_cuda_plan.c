/*
 * attention_cuda_plan.c - tile sizes, shared memory, grids and workspace
 * of the CUDA flash attention (see attention_cuda_plan.h). Pure host code,
 * built in every configuration, so that its unit tests run on CPUs.
 *
 * Tiles are tried largest first: a bigger tile reuses each K/V row (or
 * Q/dO row) loaded into shared memory over more of the other side, and
 * fp32 tiles of D = 128 still fit 64x64 in the opt-in shared memory of
 * A100 (163 KiB) and H100 (227 KiB). Smaller tiles serve devices with
 * less (99 KiB on consumer Ampere/Ada).
 */
#include "kernels/cuda/attention_cuda_plan.h"

#include <math.h>
#include <stddef.h>

typedef struct tile_choice {
    int64_t br, bc;
} tile_choice;

/* Tried in order; the kernels are compiled for exactly these. */
static const tile_choice tiles[] = {{64, 64}, {64, 32}, {32, 32}};

int tsr_cuda_attention_d_supported(int64_t d)
{
    return d == 32 || d == 64 || d == 128;
}

int64_t tsr_cuda_attention_smem_bytes(tsr_cuda_attention_kernel kernel, int64_t br, int64_t bc,
                                      int64_t d)
{
    int64_t ld = d + 1, ldp = bc + 16;
    int64_t floats;
    if (kernel == TSR_CUDA_ATTN_FORWARD)
        floats = (br + 2 * bc) * ld + br * ldp; /* Q, K, V, P */
    else
        floats = (2 * br + 2 * bc) * ld + br * ldp + 2 * br; /* Q, dO, K, V, P/dS, lse, Di */
    return floats * (int64_t)sizeof(float);
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* The first tile of `tiles` that fits; 0 (and the smallest tile's need in
 * *need) when none does. */
static int pick_tile(tsr_cuda_attention_kernel kernel, int64_t d, int64_t smem,
                     tsr_cuda_attention_launch *launch, int64_t *need)
{
    size_t count = sizeof tiles / sizeof tiles[0];
    for (size_t i = 0; i < count; i++) {
        int64_t bytes = tsr_cuda_attention_smem_bytes(kernel, tiles[i].br, tiles[i].bc, d);
        *need = bytes;
        if (bytes <= smem) {
            launch->br = tiles[i].br;
            launch->bc = tiles[i].bc;
            launch->smem_bytes = bytes;
            launch->threads = TSR_CUDA_ATTN_THREADS;
            return 1;
        }
    }
    return 0;
}

static void set_grid(tsr_cuda_attention_launch *launch, int64_t x, int64_t y, int64_t z)
{
    launch->grid[0] = x;
    launch->grid[1] = y;
    launch->grid[2] = z;
}

static tsr_status check_shape(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d)
{
    if (b <= 0 || t <= 0 || hq <= 0 || hkv <= 0 || d <= 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA attention: B %lld, T %lld, Hq %lld, Hkv %lld, D %lld; every "
                             "size must be at least 1",
                             (long long)b, (long long)t, (long long)hq, (long long)hkv,
                             (long long)d);
    if (hq % hkv != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA attention: %lld query heads are not a multiple of %lld "
                             "key/value heads; grouped-query attention needs Hq = G * Hkv",
                             (long long)hq, (long long)hkv);
    if (!tsr_cuda_attention_d_supported(d))
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention: head dimension %lld is not supported; the "
                             "kernels are compiled for 32, 64 and 128 (use the CPU kernel, or "
                             "a model whose hidden size / heads is one of them)",
                             (long long)d);
    if (hq > TSR_CUDA_ATTN_GRID_YZ_MAX || b > TSR_CUDA_ATTN_GRID_YZ_MAX)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention: Hq %lld and B %lld must each be at most %lld "
                             "(grid dimensions y and z); split the batch",
                             (long long)hq, (long long)b, (long long)TSR_CUDA_ATTN_GRID_YZ_MAX);
    /* element offsets (b * T * Hq * D) are int64 and stay far below 2^63;
     * the kernels keep row numbers (up to T plus a tile) in int */
    if (t > TSR_CUDA_ATTN_T_MAX ||
        ceil_div(b * t * hq, TSR_CUDA_ATTN_ROWDOT_ROWS) > TSR_CUDA_ATTN_GRID_X_MAX)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention: T %lld with B %lld and Hq %lld is too long for "
                             "one launch; split the batch",
                             (long long)t, (long long)b, (long long)hq);
    return TSR_OK;
}

tsr_status tsr_cuda_attention_plan_init(tsr_cuda_attention_plan *plan, int64_t b, int64_t t,
                                        int64_t hq, int64_t hkv, int64_t d,
                                        const tsr_cuda_attention_limits *limits)
{
    if (plan == NULL || limits == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA attention: plan and device limits must not be NULL");
    tsr_status st = check_shape(b, t, hq, hkv, d);
    if (st != TSR_OK)
        return st;
    if (limits->max_threads_per_block < TSR_CUDA_ATTN_THREADS)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention: the device allows %lld threads per block and the "
                             "kernels need %d",
                             (long long)limits->max_threads_per_block, TSR_CUDA_ATTN_THREADS);
    plan->b = b;
    plan->t = t;
    plan->hq = hq;
    plan->hkv = hkv;
    plan->d = d;
    plan->scale = 1.0f / sqrtf((float)d);
    int64_t need = 0;
    if (!pick_tile(TSR_CUDA_ATTN_FORWARD, d, limits->smem_per_block, &plan->forward, &need) ||
        !pick_tile(TSR_CUDA_ATTN_BACKWARD, d, limits->smem_per_block, &plan->dkv, &need))
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "CUDA attention: head dimension %lld needs %lld bytes of shared "
                             "memory per block even with 32x32 tiles, and the device offers "
                             "%lld; use the CPU kernel on this device",
                             (long long)d, (long long)need, (long long)limits->smem_per_block);
    plan->dq = plan->dkv;
    set_grid(&plan->forward, ceil_div(t, plan->forward.br), hq, b);
    set_grid(&plan->dkv, ceil_div(t, plan->dkv.bc), hkv, b);
    set_grid(&plan->dq, ceil_div(t, plan->dq.br), hq, b);
    plan->rowdot.br = 0;
    plan->rowdot.bc = 0;
    plan->rowdot.threads = 32 * TSR_CUDA_ATTN_ROWDOT_ROWS;
    plan->rowdot.smem_bytes = 0;
    set_grid(&plan->rowdot, ceil_div(b * t * hq, TSR_CUDA_ATTN_ROWDOT_ROWS), 1, 1);
    plan->workspace_bytes = b * hq * t * (int64_t)sizeof(float);
    return TSR_OK;
}
