/*
 * net_expert_load.c - how evenly the router spread the rows over the
 * expert-parallel ranks (net.h, tsr_net_expert_load_measure).
 *
 * An exchange of an MoE layer waits for the rank whose experts got the
 * most rows, so a step's pace is set by the busiest rank of each
 * exchange, not by the run's busiest rank on average: a layer that loads
 * rank 0 and the next that loads rank 1 both cost their maximum although
 * the totals are even. Each rank therefore logs the rows of every MoE
 * layer's training forward (net_step.c calls tsr_net_expert_log_note
 * after a unit's forward), and the measure takes, entry by entry, the
 * largest over the expert-parallel group. The ranks of a group run the
 * same schedule over the same layers, so they make the same calls in the
 * same order (checked: the call counts must agree).
 */
#include <stdlib.h>

#include "net_internal.h"

void tsr_net_expert_log_note(tsr_net *net, double rows_before, double even_before)
{
    tsr_net_expert_log *log = &net->expert_log;
    /* a layer with experts always adds an even share, even when no row
     * reached this rank; a layer without them adds nothing */
    if (log->total.even_rows == even_before)
        return;
    int64_t at = log->calls % TSR_NET_EXPERT_LOG;
    log->rows[at] = log->total.rows - rows_before;
    log->even_rows[at] = log->total.even_rows - even_before;
    log->calls++;
}

/* The sum over the group of its busiest rank's rows in each logged call,
 * over the calls' even shares (0 when nothing was logged). */
static tsr_status busiest_of_exchanges(const tsr_net_expert_log *log, tsr_comm *ep,
                                       double *share, int64_t *exchanges)
{
    *share = 0.0;
    *exchanges = 0;
    double calls[2] = {(double)log->calls, -(double)log->calls};
    tsr_status st = tsr_comm_allreduce(calls, calls, 2, TSR_COMM_FP64, TSR_COMM_MAX, ep, NULL);
    if (st != TSR_OK)
        return st;
    if (calls[0] != -calls[1])
        return tsr_error_set(TSR_ERR_INTERNAL,
                             "the expert-parallel ranks ran %.0f to %.0f MoE forwards: their "
                             "exchanges cannot be paired",
                             -calls[1], calls[0]);
    int64_t n = log->calls < TSR_NET_EXPERT_LOG ? log->calls : TSR_NET_EXPERT_LOG;
    if (n == 0)
        return TSR_OK;
    double *rows = malloc((size_t)n * sizeof *rows);
    if (rows == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "%lld doubles for the expert load",
                             (long long)n);
    for (int64_t i = 0; i < n; i++)
        rows[i] = log->rows[i];
    st = tsr_comm_allreduce(rows, rows, (size_t)n, TSR_COMM_FP64, TSR_COMM_MAX, ep, NULL);
    double busiest = 0.0, even = 0.0;
    for (int64_t i = 0; i < n && st == TSR_OK; i++) {
        busiest += rows[i];
        even += log->even_rows[i];
    }
    free(rows);
    if (st == TSR_OK && even > 0.0) {
        *share = busiest / even;
        *exchanges = n;
    }
    return st;
}

tsr_status tsr_net_expert_load_measure(const tsr_net *net, tsr_grid *grid,
                                       tsr_expert_load_stats *out)
{
    *out = (tsr_expert_load_stats){0};
    if (net->d.ep <= 1)
        return TSR_OK;
    const tsr_net_expert_log *log = &net->expert_log;
    double exchange = 0.0;
    int64_t exchanges = 0;
    tsr_status st =
        busiest_of_exchanges(log, tsr_grid_comm(grid, TSR_GROUP_EP), &exchange, &exchanges);
    if (st != TSR_OK)
        return st;
    /* a stage without MoE layers takes no part: 0 in the largest, 1e300
     * in the smallest (negated: all reduce by MAX) */
    bool routes = log->total.even_rows > 0.0;
    double share = routes ? log->total.rows / log->total.even_rows : 0.0;
    double v[4] = {exchange, share, routes ? -share : -1e300, (double)exchanges};
    st = tsr_comm_allreduce(v, v, 4, TSR_COMM_FP64, TSR_COMM_MAX, tsr_grid_world(grid), NULL);
    if (st != TSR_OK || v[0] <= 0.0)
        return st;
    *out = (tsr_expert_load_stats){true, v[0], v[1], -v[2], (int64_t)v[3]};
    return TSR_OK;
}
