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
    if (st == TSR_OK && microbatches > 0)
        st = tsr_net_dims_set_pipeline(&dims, cfg, grid ? tsr_grid_pp_rank(grid) : 0,
                                       microbatches);
    if (st == TSR_OK)
        st = tsr_net_build(&t->spec, cfg, &dims, &t->net);
    return st;
}

tsr_status tsr_test_net_carve(tsr_test_net *t, tsr_memory_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    tsr_net_plan(t->net, plan);
    tsr_status st = tsr_plan_allocate(plan);
    return st == TSR_OK ? tsr_net_carve(t->net, NULL, plan) : st;
}

void tsr_test_net_free(tsr_test_net *t)
{
    tsr_net_destroy(t->net);
    tsr_spec_arena_destroy(t->arena);
    memset(t, 0, sizeof *t);
}
