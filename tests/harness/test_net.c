/*
 * test_net.c - see test_net.h.
 */
#include "test_net.h"

#include <string.h>

#include "gpt_spec.h"

tsr_status tsr_test_net_build(tsr_test_net *t, const tsr_config *cfg, int64_t vocab,
                              tsr_grid *grid, int microbatches)
{
    memset(t, 0, sizeof *t);
    tsr_status st = tsr_spec_arena_create(&t->arena);
    if (st == TSR_OK)
        st = tsr_gpt_build_spec(cfg, t->arena, &t->spec);
    tsr_net_dims dims = tsr_net_dims_from_config(cfg, vocab, grid ? tsr_grid_tp_rank(grid) : 0);
    if (grid != NULL)
        tsr_net_dims_set_experts(&dims, tsr_grid_ep_rank(grid), tsr_grid_dp_size(grid));
    if (st == TSR_OK && microbatches > 0)
        st = tsr_net_dims_set_pipeline(&dims, cfg, grid ? tsr_grid_pp_rank(grid) : 0,
                                       microbatches);
    if (st == TSR_OK)
        st = tsr_net_build(&t->spec, cfg, &dims, &t->net);
    return st;
}

tsr_status tsr_test_net_carve_on(tsr_test_net *t, tsr_grid *grid, tsr_memory_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    tsr_net_plan(t->net, plan);
    tsr_status st = tsr_plan_allocate(plan);
    return st == TSR_OK ? tsr_net_carve(t->net, grid, plan) : st;
}

tsr_status tsr_test_net_carve(tsr_test_net *t, tsr_memory_plan *plan)
{
    return tsr_test_net_carve_on(t, NULL, plan);
}

const tsr_net_param *tsr_test_net_find(const tsr_net *net, const char *name)
{
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(net, &count);
    for (size_t i = 0; i < count; i++)
        if (table[i].local && strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

double tsr_test_sum_over(tsr_comm *comm, double v)
{
    tsr_comm_allreduce(&v, &v, 1, TSR_COMM_FP64, TSR_COMM_SUM, comm, NULL);
    return v;
}

void tsr_test_net_free(tsr_test_net *t)
{
    tsr_net_destroy(t->net);
    tsr_spec_arena_destroy(t->arena);
    memset(t, 0, sizeof *t);
}
