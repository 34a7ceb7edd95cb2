/*
 * tensor_parallel.c - the TP/SP collectives over the grid's TP group.
 */
#include "tensor_parallel.h"

#include <string.h>

#include "collectives/comm.h"

static tsr_comm *tp_comm(const tsr_tp *tp)
{
    return tsr_grid_comm(tp->grid, TSR_GROUP_TP);
}

tsr_status tsr_tp_allreduce_sum(tsr_call_site site, const tsr_tp *tp, float *x, int64_t n)
{
    if (tp->size <= 1)
        return TSR_OK;
    return tsr_comm_allreduce_at(site, x, x, (size_t)n, TSR_COMM_FP32, TSR_COMM_SUM, tp_comm(tp),
                                 NULL);
}

tsr_status tsr_tp_allreduce_max(tsr_call_site site, const tsr_tp *tp, float *x, int64_t n)
{
    if (tp->size <= 1)
        return TSR_OK;
    return tsr_comm_allreduce_at(site, x, x, (size_t)n, TSR_COMM_FP32, TSR_COMM_MAX, tp_comm(tp),
                                 NULL);
}

tsr_status tsr_tp_gather_sequence(tsr_call_site site, const tsr_tp *tp, float *full,
                                  const float *local, int64_t b, int64_t t_local, int64_t c)
{
    size_t chunk = (size_t)(b * t_local * c);
    if (tp->size <= 1) {
        if (full != local)
            memcpy(full, local, chunk * sizeof *full);
        return TSR_OK;
    }
    /* gathered as (tp, B, T/tp, C), then laid out as (B, tp, T/tp, C) */
    tsr_status st =
        tsr_comm_allgather_at(site, local, tp->scratch, chunk, TSR_COMM_FP32, tp_comm(tp), NULL);
    if (st != TSR_OK)
        return st;
    size_t row = (size_t)(t_local * c);
    for (int r = 0; r < tp->size; r++)
        for (int64_t i = 0; i < b; i++)
            memcpy(full + ((size_t)i * tp->size + (size_t)r) * row,
                   tp->scratch + (size_t)r * chunk + (size_t)i * row, row * sizeof *full);
    return TSR_OK;
}

tsr_status tsr_tp_scatter_sequence(tsr_call_site site, const tsr_tp *tp, float *local,
                                   const float *full, int64_t b, int64_t t_local, int64_t c)
{
    size_t chunk = (size_t)(b * t_local * c);
    if (tp->size <= 1) {
        if (full != local)
            memcpy(local, full, chunk * sizeof *local);
        return TSR_OK;
    }
    size_t row = (size_t)(t_local * c);
    for (int r = 0; r < tp->size; r++)
        for (int64_t i = 0; i < b; i++)
            memcpy(tp->scratch + (size_t)r * chunk + (size_t)i * row,
                   full + ((size_t)i * tp->size + (size_t)r) * row, row * sizeof *local);
    return tsr_comm_reduce_scatter_at(site, tp->scratch, local, chunk, TSR_COMM_FP32, TSR_COMM_SUM,
                                      tp_comm(tp), NULL);
}
