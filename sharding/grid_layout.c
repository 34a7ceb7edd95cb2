/*
 * grid_layout.c - the pure half of the grid: membership tables from sizes
 * and a rank order (rules in grid.h). No MPI, so layouts are unit-tested
 * without mpirun.
 */
#include <stdlib.h>
#include <string.h>

#include "grid.h"

static const char *const axis_names[TSR_AXIS_COUNT] = {"tp", "cp", "ep", "dp", "pp"};

const char *tsr_group_kind_name(tsr_group_kind kind)
{
    static const char *const names[TSR_GROUP_COUNT] = {
        "tp", "cp", "ep", "dp", "dp_cp", "expert_dp", "pp", "mp", "embedding"};
    if ((int)kind < 0 || kind >= TSR_GROUP_COUNT)
        return "unknown";
    return names[kind];
}

tsr_status tsr_grid_order_parse(const char *text, tsr_grid_axis order[TSR_AXIS_COUNT])
{
    if (text == NULL)
        text = "tp-cp-ep-dp-pp";
    bool seen[TSR_AXIS_COUNT] = {false};
    int n = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *end = strchr(p, '-');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int axis = -1;
        for (int a = 0; a < TSR_AXIS_COUNT; a++)
            if (len == 2 && strncmp(p, axis_names[a], 2) == 0)
                axis = a;
        if (axis < 0 || seen[axis] || n >= TSR_AXIS_COUNT)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--rank-order \"%s\": expected each of tp, cp, ep, dp, pp "
                                 "once, separated by '-' (default \"tp-cp-ep-dp-pp\")",
                                 text);
        seen[axis] = true;
        order[n++] = (tsr_grid_axis)axis;
        p += len;
        if (*p == '-')
            p++;
    }
    if (n != TSR_AXIS_COUNT)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--rank-order \"%s\" names %d of the 5 axes; list all of tp, cp, "
                             "ep, dp, pp (default \"tp-cp-ep-dp-pp\")",
                             text, n);
    return TSR_OK;
}

/* A view: axis sizes, and rank <-> coordinates in a given order. */
typedef struct view {
    int size[TSR_AXIS_COUNT];
    const tsr_grid_axis *order;
} view;

static void coords_of(const view *v, int rank, int coord[TSR_AXIS_COUNT])
{
    for (int i = 0; i < TSR_AXIS_COUNT; i++) {
        tsr_grid_axis a = v->order[i];
        coord[a] = rank % v->size[a];
        rank /= v->size[a];
    }
}

/* Mixed-radix number of the coordinates on (in_mask) or off the mask,
 * first axis in order as the fastest digit. */
static int digits(const view *v, const int coord[TSR_AXIS_COUNT], unsigned mask, bool in_mask)
{
    int value = 0, scale = 1;
    for (int i = 0; i < TSR_AXIS_COUNT; i++) {
        tsr_grid_axis a = v->order[i];
        if (((mask >> a) & 1u) != (in_mask ? 1u : 0u))
            continue;
        value += coord[a] * scale;
        scale *= v->size[a];
    }
    return value;
}

static int mask_size(const view *v, unsigned mask)
{
    int n = 1;
    for (int a = 0; a < TSR_AXIS_COUNT; a++)
        if ((mask >> a) & 1u)
            n *= v->size[a];
    return n;
}

static tsr_status alloc_kind(tsr_grid_layout *l, tsr_group_kind k, int groups, int gsize)
{
    l->num_groups[k] = groups;
    l->group_size[k] = gsize;
    l->members[k] = malloc((size_t)groups * (size_t)gsize * sizeof(int));
    l->group_of[k] = malloc((size_t)l->world * sizeof(int));
    l->index_in[k] = malloc((size_t)l->world * sizeof(int));
    if (l->members[k] == NULL || l->group_of[k] == NULL || l->index_in[k] == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the %s group table",
                             tsr_group_kind_name(k));
    for (int r = 0; r < l->world; r++)
        l->group_of[k][r] = l->index_in[k][r] = -1;
    return TSR_OK;
}

static tsr_status fill_kind(tsr_grid_layout *l, tsr_group_kind k, const view *v, unsigned mask)
{
    int gsize = mask_size(v, mask);
    tsr_status st = alloc_kind(l, k, l->world / gsize, gsize);
    if (st != TSR_OK)
        return st;
    int coord[TSR_AXIS_COUNT];
    for (int r = 0; r < l->world; r++) {
        coords_of(v, r, coord);
        int g = digits(v, coord, mask, false), pos = digits(v, coord, mask, true);
        l->members[k][(size_t)g * (size_t)gsize + (size_t)pos] = r;
        l->group_of[k][r] = g;
        l->index_in[k][r] = pos;
    }
    return TSR_OK;
}

/* Per pipeline: its first and last stage (just one rank when pp = 1). */
static tsr_status fill_embedding(tsr_grid_layout *l)
{
    const tsr_group_kind pp = TSR_GROUP_PP, k = TSR_GROUP_EMBEDDING;
    int stages = l->group_size[pp], gsize = stages > 1 ? 2 : 1;
    tsr_status st = alloc_kind(l, k, l->num_groups[pp], gsize);
    if (st != TSR_OK)
        return st;
    for (int g = 0; g < l->num_groups[pp]; g++) {
        const int *line = &l->members[pp][(size_t)g * (size_t)stages];
        int ends[2] = {line[0], line[stages - 1]};
        for (int i = 0; i < gsize; i++) {
            l->members[k][(size_t)g * (size_t)gsize + (size_t)i] = ends[i];
            l->group_of[k][ends[i]] = g;
            l->index_in[k][ends[i]] = i;
        }
    }
    return TSR_OK;
}

#define BIT(a) (1u << (a))

tsr_status tsr_grid_layout_compute(int world, int tp, int cp, int ep, int pp, int vpp,
                                   const char *order, tsr_grid_layout *out)
{
    memset(out, 0, sizeof *out);
    if (world < 1 || tp < 1 || cp < 1 || ep < 1 || pp < 1 || vpp < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "parallel sizes must be >= 1 (world %d, tp %d, cp %d, ep %d, pp "
                             "%d, virtual pp %d)",
                             world, tp, cp, ep, pp, vpp);
    tsr_status st = tsr_grid_order_parse(order, out->order);
    if (st != TSR_OK)
        return st;
    long long dense = (long long)tp * cp * pp, expert = (long long)tp * ep * pp;
    if (world % dense != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "world size %d is not divisible by tp %d x cp %d x pp %d = %lld; "
                             "change --tensor-model-parallel-size, --context-parallel-size or "
                             "--pipeline-model-parallel-size",
                             world, tp, cp, pp, dense);
    if (world % expert != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "world size %d is not divisible by tp %d x ep %d x pp %d = %lld; "
                             "--expert-model-parallel-size must divide cp x dp",
                             world, tp, ep, pp, expert);
    out->world = world;
    out->vpp = vpp;
    int dp = (int)(world / dense);
    out->size[TSR_AXIS_TP] = tp;
    out->size[TSR_AXIS_CP] = cp;
    out->size[TSR_AXIS_EP] = ep;
    out->size[TSR_AXIS_DP] = dp;
    out->size[TSR_AXIS_PP] = pp;
    out->expert_dp = (int)(world / expert);

    view dv = {{tp, cp, 1, dp, pp}, out->order};
    view ev = {{tp, 1, ep, out->expert_dp, pp}, out->order};
    /* with ep = 1 the expert view is the dense one: ep groups are single
     * ranks and expert_dp is cp x dp, whatever the order */
    for (int r = 0; r < world && ep > 1; r++) {
        int dc[TSR_AXIS_COUNT], ec[TSR_AXIS_COUNT];
        coords_of(&dv, r, dc);
        coords_of(&ev, r, ec);
        if (dc[TSR_AXIS_TP] != ec[TSR_AXIS_TP] || dc[TSR_AXIS_PP] != ec[TSR_AXIS_PP])
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--rank-order \"%s\" with cp %d and ep %d puts rank %d on "
                                 "another tensor/pipeline position for expert layers than for "
                                 "dense ones; keep cp, ep and dp next to each other in the "
                                 "order (default \"tp-cp-ep-dp-pp\")",
                                 order ? order : "tp-cp-ep-dp-pp", cp, ep, r);
    }
    struct {
        tsr_group_kind kind;
        const view *v;
        unsigned mask;
    } plan[] = {
        {TSR_GROUP_TP, &dv, BIT(TSR_AXIS_TP)},
        {TSR_GROUP_CP, &dv, BIT(TSR_AXIS_CP)},
        {TSR_GROUP_EP, ep > 1 ? &ev : &dv, BIT(TSR_AXIS_EP)},
        {TSR_GROUP_DP, &dv, BIT(TSR_AXIS_DP)},
        {TSR_GROUP_DP_CP, &dv, BIT(TSR_AXIS_CP) | BIT(TSR_AXIS_DP)},
        {TSR_GROUP_EXPERT_DP, ep > 1 ? &ev : &dv,
         ep > 1 ? BIT(TSR_AXIS_DP) : BIT(TSR_AXIS_CP) | BIT(TSR_AXIS_DP)},
        {TSR_GROUP_PP, &dv, BIT(TSR_AXIS_PP)},
        {TSR_GROUP_MP, &dv, BIT(TSR_AXIS_TP) | BIT(TSR_AXIS_PP)},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0] && st == TSR_OK; i++)
        st = fill_kind(out, plan[i].kind, plan[i].v, plan[i].mask);
    if (st == TSR_OK)
        st = fill_embedding(out);
    if (st != TSR_OK)
        tsr_grid_layout_free(out);
    return st;
}

void tsr_grid_layout_free(tsr_grid_layout *layout)
{
    for (int k = 0; k < TSR_GROUP_COUNT; k++) {
        free(layout->members[k]);
        free(layout->group_of[k]);
        free(layout->index_in[k]);
        layout->members[k] = layout->group_of[k] = layout->index_in[k] = NULL;
    }
}

const int *tsr_grid_layout_group(const tsr_grid_layout *layout, tsr_group_kind kind,
                                 int world_rank, int *size)
{
    *size = 0;
    if ((int)kind < 0 || kind >= TSR_GROUP_COUNT || world_rank < 0 ||
        world_rank >= layout->world || layout->group_of[kind] == NULL)
        return NULL;
    int g = layout->group_of[kind][world_rank];
    if (g < 0)
        return NULL;
    *size = layout->group_size[kind];
    return &layout->members[kind][(size_t)g * (size_t)layout->group_size[kind]];
}
