/*
 * grid.h - the parallel grid: which ranks form each process group.
 *
 * The only place groups are created (Megatron-Core's parallel_state). From
 * the world size and the TP, CP, EP, PP sizes (DP is what is left) and a
 * rank order (cfg->rank_order, default "tp-cp-ep-dp-pp": tp fastest) it
 * builds every group this rank belongs to.
 *
 * Two views of the same ranks, as in Megatron-Core:
 *   dense view  sizes tp, cp, dp = world / (tp cp pp), pp (ep is 1 here):
 *               groups tp, cp, dp, dp_cp (cp x dp, for gradient
 *               reduction), pp, mp (tp x pp), embedding;
 *   expert view sizes tp, ep, expert_dp = world / (tp ep pp), pp (cp is 1):
 *               groups ep and expert_dp.
 * EP is thus folded into cp x dp: the cp x dp ranks of one (tp, pp) slice
 * are re-cut into ep x expert_dp. Both views place a rank at the same tp and
 * pp coordinates (checked; an order where they differ is refused), so
 * expert layers share the tensor-parallel group and the pipeline stage of
 * the dense layers around them. The embedding group is, per pipeline, the
 * first and the last stage (one rank when pp = 1), for tied embeddings.
 *
 * In a view, rank = sum over axes of coord x stride, strides growing in
 * order. A group's members vary its axes and fix the others; members are
 * listed by their coordinates on the group's axes (first axis in order
 * fastest), groups by the fixed coordinates the same way.
 *
 * tsr_grid_layout_compute() is the pure half (no MPI): tests check layouts
 * against written-out tables. tsr_grid_create() splits the world
 * communicator by it. Called by the launcher (create) and by sharding/ and
 * models/ (queries).
 */
#ifndef TSR_SHARDING_GRID_H
#define TSR_SHARDING_GRID_H

#include <stdbool.h>

#include "collectives/comm.h"
#include "tessera/config.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tsr_grid_axis {
    TSR_AXIS_TP = 0,
    TSR_AXIS_CP,
    TSR_AXIS_EP,
    TSR_AXIS_DP,
    TSR_AXIS_PP,
    TSR_AXIS_COUNT
} tsr_grid_axis;

typedef enum tsr_group_kind {
    TSR_GROUP_TP = 0,
    TSR_GROUP_CP,
    TSR_GROUP_EP,
    TSR_GROUP_DP,
    TSR_GROUP_DP_CP,
    TSR_GROUP_EXPERT_DP,
    TSR_GROUP_PP,
    TSR_GROUP_MP,
    TSR_GROUP_EMBEDDING,
    TSR_GROUP_COUNT
} tsr_group_kind;

/* The membership tables of every group of every rank. */
typedef struct tsr_grid_layout {
    int world;
    int size[TSR_AXIS_COUNT]; /* tp, cp, ep, dp (dense), pp */
    int expert_dp;
    int vpp;                       /* virtual stages per rank, 1: none */
    tsr_grid_axis order[TSR_AXIS_COUNT]; /* fastest first */
    int group_size[TSR_GROUP_COUNT];
    int num_groups[TSR_GROUP_COUNT];
    int *members[TSR_GROUP_COUNT];  /* num_groups x group_size world ranks */
    int *group_of[TSR_GROUP_COUNT]; /* world rank -> its group, -1: none */
    int *index_in[TSR_GROUP_COUNT]; /* world rank -> its rank in that group */
} tsr_grid_layout;

/* Parses "tp-cp-ep-dp-pp"-style orders (all five names, each once) into
 * axes, fastest first. */
tsr_status tsr_grid_order_parse(const char *text, tsr_grid_axis order[TSR_AXIS_COUNT]);

/* Computes every group for a world of `world` ranks. vpp >= 1. Fails with
 * TSR_ERR_INVALID_ARG (message names the sizes) if the sizes do not divide
 * the world or the order places expert layers on other stages. */
tsr_status tsr_grid_layout_compute(int world, int tp, int cp, int ep, int pp, int vpp,
                                   const char *order, tsr_grid_layout *out);
void tsr_grid_layout_free(tsr_grid_layout *layout);

/* Members (world ranks, by group rank) of the `kind` group that holds
 * world_rank; NULL (and *size 0) if that rank is in no such group. */
const int *tsr_grid_layout_group(const tsr_grid_layout *layout, tsr_group_kind kind,
                                 int world_rank, int *size);

const char *tsr_group_kind_name(tsr_group_kind kind); /* "tp", "expert_dp", ... */

/* ---- the grid of this rank (MPI) ---------------------------------------- */

typedef struct tsr_grid tsr_grid;

/* Builds every group from the config's parallel sizes, rank_order and
 * virtual pipeline setting. Collective over world. */
tsr_status tsr_grid_create(const tsr_config *cfg, tsr_comm *world, tsr_grid **out);
/* Collective over the world the grid was made from. */
void tsr_grid_destroy(tsr_grid *grid);

/* This rank's communicator of a kind; NULL for the embedding group on a
 * middle pipeline stage. Owned by the grid. */
tsr_comm *tsr_grid_comm(const tsr_grid *grid, tsr_group_kind kind);
tsr_comm *tsr_grid_world(const tsr_grid *grid);
/* This rank's rank in / size of its group of a kind (-1 / 0 if none). */
int tsr_grid_rank(const tsr_grid *grid, tsr_group_kind kind);
int tsr_grid_size(const tsr_grid *grid, tsr_group_kind kind);
const tsr_grid_layout *tsr_grid_layout_of(const tsr_grid *grid);

int tsr_grid_tp_rank(const tsr_grid *grid);
int tsr_grid_tp_size(const tsr_grid *grid);
int tsr_grid_cp_rank(const tsr_grid *grid);
int tsr_grid_cp_size(const tsr_grid *grid);
int tsr_grid_ep_rank(const tsr_grid *grid);
int tsr_grid_ep_size(const tsr_grid *grid);
int tsr_grid_dp_rank(const tsr_grid *grid);
int tsr_grid_dp_size(const tsr_grid *grid);
int tsr_grid_expert_dp_rank(const tsr_grid *grid);
int tsr_grid_expert_dp_size(const tsr_grid *grid);
int tsr_grid_pp_rank(const tsr_grid *grid);
int tsr_grid_pp_size(const tsr_grid *grid);
int tsr_grid_vpp_size(const tsr_grid *grid);

/* Pipeline position, ignoring virtual stages. */
bool tsr_grid_is_first_stage(const tsr_grid *grid);
bool tsr_grid_is_last_stage(const tsr_grid *grid);
/* With interleaving: the first stage of the whole model is (pp rank 0,
 * virtual rank 0), the last is (pp rank pp-1, virtual rank vpp-1). */
bool tsr_grid_is_first_stage_virtual(const tsr_grid *grid, int vpp_rank);
bool tsr_grid_is_last_stage_virtual(const tsr_grid *grid, int vpp_rank);
bool tsr_grid_in_embedding_group(const tsr_grid *grid);
/* pp-group ranks of the next and previous stage (wrapping around), the
 * peers of the pipeline's sends and receives. */
int tsr_grid_pp_next(const tsr_grid *grid);
int tsr_grid_pp_prev(const tsr_grid *grid);

#ifdef __cplusplus
}
#endif

#endif /* TSR_SHARDING_GRID_H */
