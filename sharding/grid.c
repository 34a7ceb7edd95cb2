/*
 * grid.c - the grid of this rank: splits the world communicator into every
 * group of the layout (grid_layout.c) and answers position queries.
 *
 * Every rank takes part in every split (MPI_Comm_split is collective over
 * the world), in the fixed order of tsr_group_kind, even for a group kind
 * it is not a member of (the embedding group on middle stages).
 */
#include <stdlib.h>

#include "grid.h"
#include "tessera/log.h"

struct tsr_grid {
    tsr_comm *world;
    tsr_grid_layout layout;
    int world_rank;
    tsr_comm *comms[TSR_GROUP_COUNT];
};

tsr_status tsr_grid_create(const tsr_config *cfg, tsr_comm *world, tsr_grid **out)
{
    *out = NULL;
    if (cfg == NULL || world == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "tsr_grid_create: config and world are required");
    int pp = cfg->pipeline_model_parallel_size, vpp = 1;
    if (cfg->num_layers_per_virtual_pipeline_stage > 0) {
        int per_stage = pp > 0 ? cfg->num_layers / pp : 0;
        if (pp < 1 || cfg->num_layers % pp != 0 ||
            per_stage % cfg->num_layers_per_virtual_pipeline_stage != 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--num-layers %d is not a multiple of --pipeline-model-"
                                 "parallel-size %d x --num-layers-per-virtual-pipeline-stage %d",
                                 cfg->num_layers, pp, cfg->num_layers_per_virtual_pipeline_stage);
        vpp = per_stage / cfg->num_layers_per_virtual_pipeline_stage;
    }
    tsr_grid *g = calloc(1, sizeof *g);
    if (g == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the grid");
    g->world = world;
    g->world_rank = tsr_comm_rank(world);
    tsr_status st = tsr_grid_layout_compute(
        tsr_comm_size(world), cfg->tensor_model_parallel_size, cfg->context_parallel_size,
        cfg->expert_model_parallel_size, pp, vpp, cfg->rank_order, &g->layout);
    if (st != TSR_OK) {
        free(g);
        return st;
    }
    /* a split is collective: on failure every rank fails at the same kind,
     * since every rank computed the same layout */
    for (int k = 0; k < TSR_GROUP_COUNT && st == TSR_OK; k++) {
        int color = g->layout.group_of[k][g->world_rank];
        int key = g->layout.index_in[k][g->world_rank];
        st = tsr_comm_split(world, color < 0 ? TSR_COMM_NO_COLOR : color, key < 0 ? 0 : key,
                            tsr_group_kind_name((tsr_group_kind)k), &g->comms[k]);
    }
    if (st != TSR_OK) {
        tsr_grid_destroy(g);
        return st;
    }
    tsr_log_once(TSR_LOG_INFO,
                 "grid: world %d = tp %d x cp %d x dp %d x pp %d (ep %d, expert dp %d, "
                 "virtual pp %d), order %s",
                 g->layout.world, g->layout.size[TSR_AXIS_TP], g->layout.size[TSR_AXIS_CP],
                 g->layout.size[TSR_AXIS_DP], g->layout.size[TSR_AXIS_PP],
                 g->layout.size[TSR_AXIS_EP], g->layout.expert_dp, g->layout.vpp,
                 cfg->rank_order ? cfg->rank_order : "tp-cp-ep-dp-pp");
    *out = g;
    return TSR_OK;
}

void tsr_grid_destroy(tsr_grid *grid)
{
    if (grid == NULL)
        return;
    for (int k = TSR_GROUP_COUNT - 1; k >= 0; k--)
        tsr_comm_destroy(grid->comms[k]);
    tsr_grid_layout_free(&grid->layout);
    free(grid);
}

tsr_comm *tsr_grid_comm(const tsr_grid *grid, tsr_group_kind kind)
{
    if ((int)kind < 0 || kind >= TSR_GROUP_COUNT)
        return NULL;
    return grid->comms[kind];
}

tsr_comm *tsr_grid_world(const tsr_grid *grid)
{
    return grid->world;
}

int tsr_grid_rank(const tsr_grid *grid, tsr_group_kind kind)
{
    if ((int)kind < 0 || kind >= TSR_GROUP_COUNT)
        return -1;
    return grid->layout.index_in[kind][grid->world_rank];
}

int tsr_grid_size(const tsr_grid *grid, tsr_group_kind kind)
{
    if ((int)kind < 0 || kind >= TSR_GROUP_COUNT || grid->comms[kind] == NULL)
        return 0;
    return grid->layout.group_size[kind];
}

const tsr_grid_layout *tsr_grid_layout_of(const tsr_grid *grid)
{
    return &grid->layout;
}

int tsr_grid_tp_rank(const tsr_grid *grid) { return tsr_grid_rank(grid, TSR_GROUP_TP); }
int tsr_grid_tp_size(const tsr_grid *grid) { return tsr_grid_size(grid, TSR_GROUP_TP); }
int tsr_grid_cp_rank(const tsr_grid *grid) { return tsr_grid_rank(grid, TSR_GROUP_CP); }
int tsr_grid_cp_size(const tsr_grid *grid) { return tsr_grid_size(grid, TSR_GROUP_CP); }
int tsr_grid_ep_rank(const tsr_grid *grid) { return tsr_grid_rank(grid, TSR_GROUP_EP); }
int tsr_grid_ep_size(const tsr_grid *grid) { return tsr_grid_size(grid, TSR_GROUP_EP); }
int tsr_grid_dp_rank(const tsr_grid *grid) { return tsr_grid_rank(grid, TSR_GROUP_DP); }
int tsr_grid_dp_size(const tsr_grid *grid) { return tsr_grid_size(grid, TSR_GROUP_DP); }
int tsr_grid_expert_dp_rank(const tsr_grid *grid)
{
    return tsr_grid_rank(grid, TSR_GROUP_EXPERT_DP);
}
int tsr_grid_expert_dp_size(const tsr_grid *grid)
{
    return tsr_grid_size(grid, TSR_GROUP_EXPERT_DP);
}
int tsr_grid_pp_rank(const tsr_grid *grid) { return tsr_grid_rank(grid, TSR_GROUP_PP); }
int tsr_grid_pp_size(const tsr_grid *grid) { return tsr_grid_size(grid, TSR_GROUP_PP); }
int tsr_grid_vpp_size(const tsr_grid *grid) { return grid->layout.vpp; }

bool tsr_grid_is_first_stage(const tsr_grid *grid)
{
    return tsr_grid_pp_rank(grid) == 0;
}

bool tsr_grid_is_last_stage(const tsr_grid *grid)
{
    return tsr_grid_pp_rank(grid) == tsr_grid_pp_size(grid) - 1;
}

bool tsr_grid_is_first_stage_virtual(const tsr_grid *grid, int vpp_rank)
{
    return tsr_grid_is_first_stage(grid) && vpp_rank == 0;
}

bool tsr_grid_is_last_stage_virtual(const tsr_grid *grid, int vpp_rank)
{
    return tsr_grid_is_last_stage(grid) && vpp_rank == grid->layout.vpp - 1;
}

bool tsr_grid_in_embedding_group(const tsr_grid *grid)
{
    return grid->comms[TSR_GROUP_EMBEDDING] != NULL;
}

int tsr_grid_pp_next(const tsr_grid *grid)
{
    return (tsr_grid_pp_rank(grid) + 1) % tsr_grid_pp_size(grid);
}

int tsr_grid_pp_prev(const tsr_grid *grid)
{
    int n = tsr_grid_pp_size(grid);
    return (tsr_grid_pp_rank(grid) + n - 1) % n;
}
