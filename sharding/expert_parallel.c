/*
 * expert_parallel.c - the expert-parallel group's exchanges for modules
 * (tsr_module_ep_alltoall(v), tsr_module_ep_allgather and
 * tsr_module_ep_reduce_scatter in tessera/module.h).
 *
 * Row counts arrive as floats (how modules keep them in their buffers);
 * they become element counts and displacements in the net's arrays, sized
 * at carving, so a step allocates nothing.
 */
#include <string.h>

#include "collectives/comm.h"
#include "net_internal.h"

static tsr_comm *ep_comm(const tsr_net *net)
{
    return net->d.ep > 1 ? tsr_grid_comm(net->tp.grid, TSR_GROUP_EP) : NULL;
}

/* One rank: every exchange keeps its data where it is. */
static tsr_status stay(const float *send, float *recv, int64_t count)
{
    if (recv != send)
        memmove(recv, send, (size_t)count * sizeof *recv);
    return TSR_OK;
}

tsr_status tsr_module_ep_alltoall_at(tsr_call_site site, const tsr_module_run *run,
                                     const float *send, float *recv, int64_t count)
{
    tsr_comm *comm = ep_comm(run->exec->net);
    if (comm == NULL)
        return stay(send, recv, count);
    return tsr_comm_alltoall_at(site, send, recv, (size_t)count, TSR_COMM_FP32, comm, NULL);
}

tsr_status tsr_module_ep_alltoallv_at(tsr_call_site site, const tsr_module_run *run,
                                      const float *send, const float *send_rows, float *recv,
                                      const float *recv_rows, int64_t cols)
{
    tsr_net *net = run->exec->net;
    tsr_comm *comm = ep_comm(net);
    if (comm == NULL)
        return stay(send, recv, (int64_t)send_rows[0] * cols);
    int p = net->d.ep;
    size_t *sc = net->ep_counts, *sd = sc + p, *rc = sd + p, *rd = rc + p;
    size_t s_at = 0, r_at = 0;
    for (int i = 0; i < p; i++) {
        sc[i] = (size_t)send_rows[i] * (size_t)cols;
        rc[i] = (size_t)recv_rows[i] * (size_t)cols;
        sd[i] = s_at;
        rd[i] = r_at;
        s_at += sc[i];
        r_at += rc[i];
    }
    return tsr_comm_alltoallv_at(site, send, sc, sd, recv, rc, rd, TSR_COMM_FP32, comm, NULL);
}

tsr_status tsr_module_ep_allgather_at(tsr_call_site site, const tsr_module_run *run,
                                      const float *send, float *recv, int64_t count)
{
    tsr_comm *comm = ep_comm(run->exec->net);
    if (comm == NULL)
        return stay(send, recv, count);
    return tsr_comm_allgather_at(site, send, recv, (size_t)count, TSR_COMM_FP32, comm, NULL);
}

tsr_status tsr_module_ep_reduce_scatter_at(tsr_call_site site, const tsr_module_run *run,
                                           const float *send, float *recv, int64_t count)
{
    tsr_comm *comm = ep_comm(run->exec->net);
    if (comm == NULL)
        return stay(send, recv, count);
    return tsr_comm_reduce_scatter_at(site, send, recv, (size_t)count, TSR_COMM_FP32,
                                      TSR_COMM_SUM, comm, NULL);
}
