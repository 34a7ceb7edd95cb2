/*
 * data_parallel.c - data-parallel reductions over the grid's DP group.
 */
#include "data_parallel.h"

#include "collectives/comm.h"

static tsr_status average_grads(void *ctx, float *grads, size_t count)
{
    tsr_comm *dp = tsr_grid_comm(ctx, TSR_GROUP_DP);
    return tsr_comm_allreduce(grads, grads, count, TSR_COMM_FP32, TSR_COMM_SUM, dp, NULL);
}

static tsr_status sum_scalars(void *ctx, double *values, int count)
{
    tsr_comm *dp = tsr_grid_comm(ctx, TSR_GROUP_DP);
    return tsr_comm_allreduce(values, values, (size_t)count, TSR_COMM_FP64, TSR_COMM_SUM, dp,
                              NULL);
}

void tsr_dp_fill_hooks(tsr_grid *grid, tsr_trainer_hooks *hooks)
{
    hooks->ctx = grid;
    hooks->dp_rank = tsr_grid_dp_rank(grid);
    hooks->dp_size = tsr_grid_dp_size(grid);
    hooks->average_grads = hooks->dp_size > 1 ? average_grads : NULL;
    hooks->sum_scalars = hooks->dp_size > 1 ? sum_scalars : NULL;
}
