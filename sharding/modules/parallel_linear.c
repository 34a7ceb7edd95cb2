/*
 * parallel_linear.c - the edges of tensor-parallel regions (see the
 * header for where each collective sits).
 */
#include "parallel_linear.h"

#include <string.h>

#include "tessera/kernels.h"

static bool one_rank(const tsr_module_run *run)
{
    return run->info->tp_size <= 1 && !run->info->sequence_parallel;
}

tsr_status tsr_column_input_forward(const tsr_module_run *run, const float *in, float *gathered,
                                    int64_t cols, const float **full)
{
    if (!run->info->sequence_parallel) {
        *full = in;
        return TSR_OK;
    }
    *full = gathered;
    return tsr_module_tp_gather_rows(run, gathered, in, cols);
}

float *tsr_column_input_grad_target(const tsr_module_run *run, float *din, float *partial,
                                    int64_t cols)
{
    if (one_rank(run))
        return din;
    memset(partial, 0,
           (size_t)(tsr_module_rows(run, TSR_ROWS_TOKENS) * cols) * sizeof *partial);
    return partial;
}

tsr_status tsr_column_input_backward(const tsr_module_run *run, float *din, float *partial,
                                     float *local, int64_t cols)
{
    if (one_rank(run))
        return TSR_OK;
    float *sum = run->info->sequence_parallel ? local : partial;
    tsr_status st = tsr_module_tp_scatter_rows(run, sum, partial, cols);
    if (st == TSR_OK)
        tsr_accumulate(din, sum, tsr_module_rows(run, TSR_ROWS_LOCAL) * cols);
    return st;
}

float *tsr_row_output_target(const tsr_module_run *run, float *out, float *full)
{
    return run->info->sequence_parallel ? full : out;
}

tsr_status tsr_row_output_forward(const tsr_module_run *run, float *out, float *full,
                                  int64_t cols)
{
    return tsr_module_tp_scatter_rows(run, out, run->info->sequence_parallel ? full : out, cols);
}

tsr_status tsr_row_output_backward(const tsr_module_run *run, const float *dout, float *gathered,
                                   int64_t cols, const float **full)
{
    if (!run->info->sequence_parallel) {
        *full = dout;
        return TSR_OK;
    }
    *full = gathered;
    return tsr_module_tp_gather_rows(run, gathered, dout, cols);
}

const float *tsr_row_parallel_bias(const tsr_module_run *run, const float *bias)
{
    return run->info->tp_rank == 0 ? bias : NULL;
}
