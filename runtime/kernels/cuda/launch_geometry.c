/*
 * launch_geometry.c - block, grid and shared-memory sizes of the
 * element-wise CUDA kernels, the sum of squares' plan, and the scalars
 * AdamW and RoPE receive precomputed (see launch_geometry.h for the
 * invariants). Plain C with no CUDA dependency, so that every choice made
 * here is unit-tested on machines without a GPU; the .cu files only pass
 * the device's limits in and launch what comes out.
 */
#include "kernels/cuda/launch_geometry.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>

/* Generous bounds on what a device reports: products of two of them stay
 * far below INT64_MAX, so the arithmetic below needs no overflow checks
 * on limits, only on the caller's sizes. */
#define LIMIT_SMALL_MAX (INT64_C(1) << 20)
#define LIMIT_LARGE_MAX (INT64_C(1) << 40)

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a - 1) / b + 1; /* a >= 1, b >= 1: no overflow, unlike a + b - 1 */
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static tsr_status limit_in_range(const char *kernel, const char *name, int64_t value,
                                 int64_t lo, int64_t hi)
{
    if (value < lo || value > hi)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: device limit %s = %" PRId64 " is outside [%" PRId64
                             ", %" PRId64 "]; the limits were not read from a CUDA device",
                             kernel, name, value, lo, hi);
    return TSR_OK;
}

tsr_status tsr_cuda_limits_check(const tsr_cuda_limits *limits, const char *kernel)
{
    if (limits == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s: no device limits given", kernel);
    if (limits->warp_size != TSR_CUDA_WARP)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "%s: the device's warp is %" PRId64
                             " threads wide; the kernels are written for %d",
                             kernel, limits->warp_size, TSR_CUDA_WARP);
    tsr_status st = limit_in_range(kernel, "sm_count", limits->sm_count, 1, LIMIT_SMALL_MAX);
    if (st == TSR_OK)
        st = limit_in_range(kernel, "max_threads_per_block", limits->max_threads_per_block,
                            TSR_CUDA_WARP, LIMIT_SMALL_MAX);
    if (st == TSR_OK)
        st = limit_in_range(kernel, "max_threads_per_sm", limits->max_threads_per_sm,
                            TSR_CUDA_WARP, LIMIT_SMALL_MAX);
    if (st == TSR_OK)
        st = limit_in_range(kernel, "max_grid_x", limits->max_grid_x, 1, LIMIT_LARGE_MAX);
    if (st == TSR_OK)
        st = limit_in_range(kernel, "max_shared_per_block", limits->max_shared_per_block, 0,
                            LIMIT_LARGE_MAX);
    return st;
}

/* rows x cols must be positive and their product an int64_t */
static tsr_status check_extent(const char *kernel, const char *what_rows, int64_t rows,
                               const char *what_cols, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %s = %" PRId64 " and %s = %" PRId64
                             " must both be positive (an empty tensor launches nothing)",
                             kernel, what_rows, rows, what_cols, cols);
    if (rows > INT64_MAX / cols)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %s = %" PRId64 " times %s = %" PRId64
                             " elements overflow a 64-bit index",
                             kernel, what_rows, rows, what_cols, cols);
    return TSR_OK;
}

/* the most threads per block, at most `want`, in whole warps */
static int64_t block_cap(const tsr_cuda_limits *limits, int64_t want)
{
    int64_t cap = min64(want, limits->max_threads_per_block);
    return cap / TSR_CUDA_WARP * TSR_CUDA_WARP;
}

/* blocks of `threads` the whole device holds at once */
static int64_t resident_blocks(const tsr_cuda_limits *limits, int64_t threads)
{
    int64_t per_sm = limits->max_threads_per_sm / threads;
    return limits->sm_count * (per_sm > 0 ? per_sm : 1);
}

static tsr_status check_shared(const tsr_cuda_limits *limits, int64_t bytes, const char *kernel)
{
    if (bytes > limits->max_shared_per_block)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "%s: needs %" PRId64
                             " bytes of shared memory per block; the device allows %" PRId64,
                             kernel, bytes, limits->max_shared_per_block);
    return TSR_OK;
}

/* What every geometry does first: an all-zero launch (what a refused call
 * leaves), then the limits and the extent rows x cols it is asked for. */
static tsr_status geometry_begin(const tsr_cuda_limits *limits, const char *kernel,
                                 const char *what_rows, int64_t rows, const char *what_cols,
                                 int64_t cols, tsr_cuda_launch *launch)
{
    launch->blocks = launch->threads = launch->shared_bytes = launch->split = 0;
    tsr_status st = tsr_cuda_limits_check(limits, kernel);
    if (st != TSR_OK)
        return st;
    return check_extent(kernel, what_rows, rows, what_cols, cols);
}

tsr_status tsr_cuda_geometry_rows(const tsr_cuda_limits *limits, int64_t rows, int64_t cols,
                                  int64_t reduce_bytes, const char *kernel,
                                  tsr_cuda_launch *launch)
{
    tsr_status st = geometry_begin(limits, kernel, "rows", rows, "cols", cols, launch);
    if (st != TSR_OK)
        return st;
    if (reduce_bytes < 0 || reduce_bytes > limits->max_shared_per_block)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %" PRId64 " bytes per warp partial is not a valid size",
                             kernel, reduce_bytes);
    int64_t cap = block_cap(limits, TSR_CUDA_ROW_THREADS_MAX);
    int64_t threads = cols >= cap ? cap : ceil_div(cols, TSR_CUDA_WARP) * TSR_CUDA_WARP;
    int64_t shared = threads / TSR_CUDA_WARP * reduce_bytes;
    st = check_shared(limits, shared, kernel);
    if (st != TSR_OK)
        return st;
    launch->threads = threads;
    launch->blocks = min64(min64(rows, resident_blocks(limits, threads)), limits->max_grid_x);
    launch->shared_bytes = shared;
    launch->split = 1;
    return TSR_OK;
}

tsr_status tsr_cuda_geometry_elements(const tsr_cuda_limits *limits, int64_t n,
                                      const char *kernel, tsr_cuda_launch *launch)
{
    tsr_status st = geometry_begin(limits, kernel, "elements", n, "width", 1, launch);
    if (st != TSR_OK)
        return st;
    int64_t threads = block_cap(limits, TSR_CUDA_ELEMENT_THREADS);
    launch->threads = threads;
    launch->blocks = min64(min64(ceil_div(n, threads), resident_blocks(limits, threads)),
                           limits->max_grid_x);
    launch->shared_bytes = 0;
    launch->split = 1;
    return TSR_OK;
}

tsr_status tsr_cuda_geometry_columns(const tsr_cuda_limits *limits, int64_t rows, int64_t cols,
                                     int64_t sums, const char *kernel, tsr_cuda_launch *launch)
{
    tsr_status st = geometry_begin(limits, kernel, "rows", rows, "cols", cols, launch);
    if (st != TSR_OK)
        return st;
    if (sums < 1 || sums > 16)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %" PRId64 " column sums per element; 1 to 16 are supported",
                             kernel, sums);
    int64_t groups = min64(rows, TSR_CUDA_COLUMN_GROUPS_MAX);
    groups = min64(groups, block_cap(limits, TSR_CUDA_COLUMN_GROUPS_MAX * TSR_CUDA_WARP) /
                               TSR_CUDA_WARP);
    int64_t threads = groups * TSR_CUDA_WARP;
    int64_t shared = threads * sums * (int64_t)sizeof(float);
    st = check_shared(limits, shared, kernel);
    if (st != TSR_OK)
        return st;
    int64_t strips = ceil_div(cols, TSR_CUDA_WARP);
    launch->threads = threads;
    launch->blocks = min64(min64(strips, resident_blocks(limits, threads)), limits->max_grid_x);
    launch->shared_bytes = shared;
    launch->split = groups;
    return TSR_OK;
}

tsr_status tsr_cuda_geometry_scatter(const tsr_cuda_limits *limits, int64_t cols,
                                     int64_t vocab_local, const char *kernel,
                                     tsr_cuda_launch *launch)
{
    tsr_status st =
        geometry_begin(limits, kernel, "vocab_local", vocab_local, "cols", cols, launch);
    if (st != TSR_OK)
        return st;
    /* as many owners per column as fill the device once, so that a narrow
     * table still spreads over every SM */
    int64_t device_threads = limits->sm_count * limits->max_threads_per_sm;
    int64_t slots = min64(min64(ceil_div(device_threads, cols), TSR_CUDA_SCATTER_SLOTS_MAX),
                          vocab_local);
    int64_t split = ceil_div(vocab_local, slots);
    slots = ceil_div(vocab_local, split); /* no slot left without rows */
    if (cols > INT64_MAX / slots)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: %" PRId64 " columns times %" PRId64
                             " slots overflow a 64-bit index",
                             kernel, cols, slots);
    st = tsr_cuda_geometry_elements(limits, cols * slots, kernel, launch);
    if (st != TSR_OK)
        return st;
    launch->split = split;
    return TSR_OK;
}

int64_t tsr_cuda_scatter_slots(const tsr_cuda_launch *launch, int64_t vocab_local)
{
    return ceil_div(vocab_local, launch->split);
}

tsr_status tsr_cuda_sumsq_plan_make(int64_t n, const char *kernel, tsr_cuda_sumsq_plan *plan)
{
    plan->partials = plan->chunk = plan->threads = plan->shared_bytes = 0;
    plan->workspace_bytes = 0;
    tsr_status st = check_extent(kernel, "elements", n, "width", 1);
    if (st != TSR_OK)
        return st;
    int64_t threads = TSR_CUDA_SUMSQ_THREADS;
    int64_t partials = min64(ceil_div(n, threads * TSR_CUDA_SUMSQ_ITEMS),
                             TSR_CUDA_SUMSQ_PARTIALS_MAX);
    /* no block is empty: (partials - 1) * chunk < n holds because
     * partials * (partials - 1) < n (partials <= n / 2048 + 1, and at most
     * 1024 only once n > 2^21) */
    int64_t chunk = ceil_div(n, partials);
    plan->partials = partials;
    plan->chunk = chunk;
    plan->threads = threads;
    plan->shared_bytes = threads / TSR_CUDA_WARP * (int64_t)sizeof(double);
    plan->workspace_bytes = partials * (int64_t)sizeof(double);
    return TSR_OK;
}

/* The statements of tsr_adamw_update's prologue, in the same order and
 * precision. This file is compiled in ISO C without -ffp-contract=fast, so
 * 1 - lr * weight_decay is rounded twice here; adamw.c may fuse it. Both
 * are then rounded to float, which hides the difference except where the
 * double lands within one unit of a float rounding boundary. */
void tsr_cuda_adamw_factors_make(tsr_cuda_adamw_factors *factors, float lr, float beta1,
                                 float beta2, float eps, float weight_decay, int64_t step,
                                 float grad_scale)
{
    double t = (double)(step > 0 ? step : 1);
    double bc1 = 1.0 - pow((double)beta1, t), bc2 = 1.0 - pow((double)beta2, t);
    factors->decay = (float)(1.0 - (double)lr * (double)weight_decay);
    factors->beta1 = beta1;
    factors->one_minus_beta1 = (float)(1.0 - (double)beta1);
    factors->beta2 = beta2;
    factors->one_minus_beta2 = (float)(1.0 - (double)beta2);
    factors->step_size = (float)((double)lr / bc1);
    factors->bc2_sqrt = (float)sqrt(bc2);
    factors->eps = eps;
    factors->grad_scale = grad_scale;
}

tsr_status tsr_cuda_rope_frequencies(float *inv_freq, int64_t d, float base, const char *kernel)
{
    if (d <= 0 || d % 2 != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: head dimension %" PRId64 " must be positive and even", kernel,
                             d);
    if (d / 2 > TSR_CUDA_ROPE_HALF_MAX)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "%s: head dimension %" PRId64 " exceeds the %d the CUDA rotary "
                             "kernel supports",
                             kernel, d, 2 * TSR_CUDA_ROPE_HALF_MAX);
    for (int64_t i = 0; i < d / 2; i++)
        inv_freq[i] = 1.0f / powf(base, (float)(2 * i) / (float)d);
    return TSR_OK;
}
