/*
 * net_memory.c - where every declared buffer lives, the memory plan, and
 * the carving of that plan, from one walk (memory_walk) run twice: once
 * adding sizes to the plan, once taking them from the allocated arenas.
 * A new buffer is one declaration in a module; nothing here changes.
 *
 * Per activation slot (a micro batch in flight): each local unit's saved
 * block (a recomputed layer's lives in the shared recompute workspace
 * instead; under --bf16 / --fp16 its activations take 2 bytes each:
 * net_held.c), each chunk's input and local layer's output (the residual
 * stream, in 16 bits too unless --fp32-residual-connection), the final
 * norm's output when the head keeps it. Scratch: one region as deep as
 * the deepest unit tree, and the step's own buffers (the stream gradient,
 * loss rows; under 16 bits the fp32 staging block of the unit being run
 * and the stream's two fp32 work buffers).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

static size_t aligned(size_t floats)
{
    return (floats + 15) / 16 * 16;
}

int64_t tsr_net_rows(const tsr_net *net, tsr_buffer_rows rows)
{
    if (net->decode_rows > 0 && rows != TSR_ROWS_FIXED)
        return net->decode_rows; /* generation: one token per sample */
    switch (rows) {
    case TSR_ROWS_TOKENS:
        return net->d.micro_batch * net->d.seq;
    case TSR_ROWS_LOCAL:
        return net->d.micro_batch * net->d.l_seq;
    case TSR_ROWS_FIXED:
        break;
    }
    return 1;
}

static size_t buffer_floats(const tsr_net *net, const tsr_buffer_decl *b)
{
    return aligned((size_t)(tsr_net_rows(net, b->rows) * b->cols));
}

size_t tsr_net_largest_buffer_floats(const tsr_net *net)
{
    size_t largest = (size_t)(tsr_net_rows(net, TSR_ROWS_TOKENS) * net->d.hidden);
    for (int n = 0; n < net->node_count; n++) {
        const tsr_module_decl *decl = &net->nodes[n].decl;
        for (int b = 0; b < decl->buffer_count; b++) {
            size_t floats = (size_t)(tsr_net_rows(net, decl->buffers[b].rows) *
                                     decl->buffers[b].cols);
            if (decl->buffers[b].enabled && floats > largest)
                largest = floats;
        }
    }
    return largest;
}

/* Lays out node n's buffers: saved activations after *activations, the
 * other saved buffers after *rest (offsets from the rest's start, moved
 * behind the activations by shift_rest), scratch from scratch_base;
 * returns the end of the deepest scratch path below it. */
static size_t layout_node(tsr_net *net, int n, size_t *activations, size_t *rest,
                          size_t scratch_base)
{
    tsr_module_node *node = &net->nodes[n];
    size_t scratch = scratch_base;
    for (int b = 0; b < node->decl.buffer_count; b++) {
        const tsr_buffer_decl *buf = &node->decl.buffers[b];
        if (!buf->enabled)
            continue;
        size_t floats = buffer_floats(net, buf);
        size_t *next = buf->life != TSR_BUFFER_SAVED ? &scratch
                       : buf->activation            ? activations
                                                    : rest;
        node->buffer_offset[b] = *next;
        *next += floats;
    }
    node->scratch_floats = scratch - scratch_base;
    size_t deepest = scratch;
    for (int c = 0; c < node->info.child_count; c++) {
        size_t end = layout_node(net, node->child[c], activations, rest, scratch);
        deepest = end > deepest ? end : deepest;
    }
    return deepest;
}

static void shift_rest(tsr_net *net, int n, size_t by)
{
    tsr_module_node *node = &net->nodes[n];
    for (int b = 0; b < node->decl.buffer_count; b++) {
        const tsr_buffer_decl *buf = &node->decl.buffers[b];
        if (buf->enabled && buf->life == TSR_BUFFER_SAVED && !buf->activation)
            node->buffer_offset[b] += by;
    }
    for (int c = 0; c < node->info.child_count; c++)
        shift_rest(net, node->child[c], by);
}

static int recompute_group_size(const tsr_config *cfg)
{
    if (cfg->recompute_granularity != TSR_RECOMPUTE_FULL)
        return 0;
    return cfg->recompute_method == TSR_RECOMPUTE_UNIFORM ? cfg->recompute_num_layers : 1;
}

bool tsr_net_recomputed(const tsr_net *net, int j, int n, int *first, int *count)
{
    const tsr_config *cfg = &net->cfg;
    if (net->recompute_group == 0)
        return false;
    if (cfg->recompute_method == TSR_RECOMPUTE_BLOCK) {
        *first = j;
        *count = 1;
        return j < cfg->recompute_num_layers;
    }
    int size = (int)net->recompute_group;
    *first = j / size * size;
    *count = *first + size <= n ? size : n - *first;
    return true;
}

tsr_status tsr_net_layout_memory(tsr_net *net)
{
    const tsr_net_dims *d = &net->d;
    net->recompute_group = (size_t)recompute_group_size(&net->cfg);
    net->module_scratch = 0;
    net->recompute_block = 0;
    net->held = net->cfg.bf16   ? TSR_NET_HELD_BF16
                : net->cfg.fp16 ? TSR_NET_HELD_FP16
                                : TSR_NET_HELD_FP32;
    net->weights16 = net->cfg.bf16 || net->cfg.fp16;
    size_t stream =
        tsr_net_stream_store_floats(net, (size_t)(tsr_net_rows(net, TSR_ROWS_LOCAL) * d->hidden));
    for (int u = 0; u < net->unit_count; u++) {
        tsr_net_unit *unit = &net->units[u];
        size_t activations = 0, rest = 0;
        unit->scratch_floats = layout_node(net, unit->root, &activations, &rest, 0);
        shift_rest(net, unit->root, activations);
        unit->activation_floats = activations;
        unit->saved_floats = activations + rest;
        if (!unit->local)
            continue;
        if (unit->scratch_floats > net->module_scratch)
            net->module_scratch = unit->scratch_floats;
    }
    /* which local layers are recomputed (by their place in their chunk) */
    int64_t local = 0;
    for (int c = 0; c < d->chunks; c++)
        for (int j = 0; j < d->chunk_layers[c]; j++, local++) {
            tsr_net_unit *unit = &net->units[tsr_net_unit_layer(net, d->chunk_first_layer[c] + j)];
            int first = 0, count = 0;
            unit->recomputed = tsr_net_recomputed(net, j, d->chunk_layers[c], &first, &count);
            unit->recompute_index = j - first;
            if (unit->recomputed && unit->saved_floats > net->recompute_block)
                net->recompute_block = unit->saved_floats;
        }
    net->staging_floats = 0;
    for (int u = 0; u < net->unit_count; u++)
        if (tsr_net_unit_held(net, &net->units[u]) &&
            net->units[u].saved_floats > net->staging_floats)
            net->staging_floats = net->units[u].saved_floats;
    const tsr_module_node *head = &net->nodes[net->units[tsr_net_unit_head(net)].root];
    const tsr_module_node *norm = &net->nodes[net->units[tsr_net_unit_final_norm(net)].root];
    net->norm_out_saved = head->decl.keeps_input;
    size_t norm_out = aligned((size_t)(tsr_net_rows(net, norm->decl.out_rows) * norm->decl.out_cols));
    size_t slot = 0;
    for (int u = 0; u < net->unit_count; u++) {
        tsr_net_unit *unit = &net->units[u];
        if (!unit->local)
            continue;
        if (!unit->recomputed) {
            unit->slot_offset = slot;
            slot += tsr_net_unit_held(net, unit) ? tsr_net_held_floats(unit)
                                                 : unit->saved_floats;
        }
        if (unit->role == UNIT_LAYER) {
            unit->out_offset = slot;
            slot += stream;
        }
        if (unit->role == UNIT_FINAL_NORM && net->norm_out_saved) {
            unit->out_offset = slot;
            slot += norm_out;
        }
    }
    net->slot_floats = slot;
    return TSR_OK;
}

/* --------------------------------------------------- plan and carving */

typedef struct walker {
    tsr_memory_plan *plan;
    bool carve;
    tsr_status status;
} walker;

static void floats_item(walker *w, tsr_mem_category cat, size_t floats, float **ptr)
{
    if (w->status != TSR_OK)
        return;
    if (!w->carve)
        tsr_plan_add_floats(w->plan, cat, floats);
    else
        w->status = tsr_plan_take_floats(w->plan, cat, floats, ptr);
}

static void bytes_item(walker *w, tsr_mem_category cat, size_t bytes, void **ptr)
{
    if (w->status != TSR_OK)
        return;
    if (!w->carve)
        tsr_plan_add_bytes(w->plan, cat, bytes);
    else
        w->status = tsr_plan_take_bytes(w->plan, cat, bytes, ptr);
}

/* The trainable parameters' fp32 view under 16 bits (net_internal.h):
 * reserved whole, so offsets stay those of the flat buffer, and backed for
 * the spans a module reads in fp32 only. */
static void view_item(walker *w, tsr_net *net)
{
    if (w->status != TSR_OK)
        return;
    size_t last = SIZE_MAX, bytes = 0;
    if (w->carve) {
        tsr_sparse_release(&net->params_block);
        w->status = tsr_sparse_reserve(net->numel * sizeof(float), &net->params_block);
        net->params = (float *)(void *)net->params_block.base;
    }
    for (size_t s = 0; s < net->span_count && w->status == TSR_OK; s++) {
        const tsr_param_span *span = &net->spans[s];
        if (span->no_fp32_read)
            continue;
        if (w->carve)
            w->status = tsr_sparse_commit(&net->params_block, span->offset * sizeof(float),
                                          span->count * sizeof(float));
        else
            bytes += tsr_sparse_new_pages(span->offset * sizeof(float),
                                          span->count * sizeof(float), &last);
    }
    if (!w->carve)
        tsr_plan_add_sparse(w->plan, TSR_MEM_PARAMS, bytes);
}

static tsr_status memory_walk(tsr_net *net, tsr_memory_plan *plan, bool carve)
{
    const tsr_net_dims *d = &net->d;
    walker w = {plan, carve, TSR_OK};
    size_t nt = (size_t)tsr_net_rows(net, TSR_ROWS_TOKENS);
    size_t stream = (size_t)tsr_net_rows(net, TSR_ROWS_LOCAL) * (size_t)d->hidden;
    size_t slots = (size_t)d->slots, chunks = (size_t)d->chunks;
    const tsr_module_node *norm = &net->nodes[net->units[tsr_net_unit_final_norm(net)].root];
    size_t norm_out = (size_t)(tsr_net_rows(net, norm->decl.out_rows) * norm->decl.out_cols);

    /* the trainable parameters last in their arena: the trainer extends
     * them with the distributed optimizer's padding */
    floats_item(&w, TSR_MEM_PARAMS, net->frozen_numel, &net->frozen);
    if (net->weights16)
        view_item(&w, net);
    else
        floats_item(&w, TSR_MEM_PARAMS, net->numel, &net->params);
    floats_item(&w, TSR_MEM_GRADS, net->numel, &net->grads);
    floats_item(&w, TSR_MEM_ACTIVATIONS, slots * net->slot_floats, &net->slots_base);
    floats_item(&w, TSR_MEM_ACTIVATIONS, net->recompute_group * net->recompute_block,
                &net->recompute_base);
    /* scratch: it holds a unit's block only while that unit runs */
    floats_item(&w, TSR_MEM_SCRATCH, net->staging_floats, &net->staging);
    bytes_item(&w, TSR_MEM_SCRATCH, slots * chunks * sizeof *net->io, (void **)&net->io);
    for (size_t i = 0; i < slots * chunks; i++) {
        chunk_io *io = carve ? &net->io[i] : NULL;
        float *x = NULL, *dr = NULL, *ds = NULL;
        floats_item(&w, TSR_MEM_ACTIVATIONS, tsr_net_stream_store_floats(net, stream), &x);
        if (d->pp > 1) { /* the gradients the pipeline exchanges */
            floats_item(&w, TSR_MEM_ACTIVATIONS, stream, &dr);
            floats_item(&w, TSR_MEM_ACTIVATIONS, stream, &ds);
        }
        if (io != NULL && w.status == TSR_OK)
            *io = (chunk_io){x, dr, ds};
    }
    floats_item(&w, TSR_MEM_SCRATCH, net->module_scratch, &net->scratch);
    floats_item(&w, TSR_MEM_SCRATCH, nt * (size_t)d->hidden, &net->tp.scratch);
    for (int k = 0; k < 2 && tsr_net_stream_held(net); k++)
        floats_item(&w, TSR_MEM_SCRATCH, stream, &net->stream_work[k]);
    floats_item(&w, TSR_MEM_SCRATCH, stream, &net->d_stream);
    floats_item(&w, TSR_MEM_SCRATCH, stream, &net->d_other);
    floats_item(&w, TSR_MEM_SCRATCH, norm_out, &net->d_norm);
    if (!net->norm_out_saved)
        floats_item(&w, TSR_MEM_SCRATCH, norm_out, &net->norm_out_scratch);
    floats_item(&w, TSR_MEM_SCRATCH, nt, &net->row_weight);
    floats_item(&w, TSR_MEM_SCRATCH, nt, &net->row_loss);
    floats_item(&w, TSR_MEM_SCRATCH, nt, &net->row_correct);
    if (d->pp > 1) { /* the iteration's micro batches, read up front */
        size_t m = (size_t)d->microbatches;
        bytes_item(&w, TSR_MEM_SCRATCH, m * (nt + 1) * sizeof(int32_t), (void **)&net->mb_tokens);
        bytes_item(&w, TSR_MEM_SCRATCH, m * nt * sizeof(int32_t), (void **)&net->mb_targets);
        floats_item(&w, TSR_MEM_SCRATCH, m * nt, &net->mb_mask);
        size_t rows = m * nt * sizeof(int32_t);
        if (net->cfg.reset_attention_mask)
            bytes_item(&w, TSR_MEM_SCRATCH, rows, (void **)&net->mb_doc_start);
        if (net->cfg.prefix_lm) {
            bytes_item(&w, TSR_MEM_SCRATCH, rows, (void **)&net->mb_prefix_lo);
            bytes_item(&w, TSR_MEM_SCRATCH, rows, (void **)&net->mb_prefix_hi);
        }
        bytes_item(&w, TSR_MEM_SCRATCH, m * sizeof(tsr_microbatch), (void **)&net->mbs);
    }
    net->action_count = tsr_net_schedule_length(d);
    if (net->action_count > 0)
        bytes_item(&w, TSR_MEM_SCRATCH, net->action_count * sizeof *net->actions,
                   (void **)&net->actions);
    return w.status;
}

void tsr_net_plan(const tsr_net *net, tsr_memory_plan *plan)
{
    /* the walk only adds sizes when not carving; it writes no field */
    memory_walk((tsr_net *)net, plan, false);
}

/* ------------------------------------------------------ initialisation */

/* n floats from the RNG keyed by `key` from global element `first`, or
 * the constant. */
static void init_run(const tsr_net_param *p, float *x, int64_t n, uint64_t key, uint64_t first)
{
    if (p->init == TSR_INIT_NORMAL && p->init_value > 0.0f)
        tsr_rng_fill_normal(x, n, key, first, 0.0f, p->init_value);
    else
        for (int64_t c = 0; c < n; c++)
            x[c] = p->init == TSR_INIT_NORMAL ? 0.0f : p->init_value;
}

/* Every element from the RNG keyed by (seed, name, global element index):
 * the same value whichever rank holds it. Padded vocabulary rows are
 * initialised too (they are never used). Under 16 bits the trainable ones
 * go to grads, which the trainer takes them from (model.h fp32_view). */
static void init_params(tsr_net *net)
{
    uint64_t seed = (uint64_t)net->cfg.seed;
    int tp_rank = net->d.tp_rank;
    for (size_t i = 0; i < net->param_count_entries; i++) {
        const tsr_net_param *p = &net->table[i];
        if (!p->local)
            continue;
        float *data = (p->frozen    ? net->frozen
                       : net->weights16 ? net->grads
                                        : net->params) +
                      p->offset;
        uint64_t key = tsr_rng_key(seed, p->name);
        if (p->split == TSR_PARAM_SPLIT_EXPERTS) { /* its blocks say where each row is */
            for (size_t b = p->first_tensor; b < p->first_tensor + p->tensor_blocks; b++) {
                const tsr_tensor_desc *t = &net->tensors[b];
                float *block = data + (t->offset - p->offset);
                for (int64_t r = 0; r < t->row_count; r++)
                    init_run(p, block + r * t->col_count, t->col_count, key,
                             (uint64_t)((t->row_start + r) * p->cols + t->col_start));
            }
            continue;
        }
        int64_t blocks = p->split == TSR_PARAM_SPLIT_GATE_UP ? 2 : 1;
        int64_t block_rows = p->local_rows / blocks;
        bool by_rows = p->split == TSR_PARAM_SPLIT_ROWS || p->split == TSR_PARAM_SPLIT_VOCAB ||
                       p->split == TSR_PARAM_SPLIT_GATE_UP;
        for (int64_t blk = 0; blk < blocks; blk++) {
            int64_t row0 = 0, col0 = 0;
            if (by_rows)
                row0 = blk * (p->rows / 2) + (int64_t)tp_rank * block_rows;
            if (p->split == TSR_PARAM_SPLIT_COLS)
                col0 = (int64_t)tp_rank * p->local_cols;
            for (int64_t r = 0; r < block_rows; r++)
                init_run(p, data + (blk * block_rows + r) * p->local_cols, p->local_cols, key,
                         (uint64_t)((row0 + r) * p->cols + col0));
        }
    }
}

tsr_status tsr_net_carve(tsr_net *net, tsr_grid *grid, tsr_memory_plan *plan)
{
    const tsr_net_dims *d = &net->d;
    if ((d->tp > 1 || d->pp > 1 || d->ep > 1) &&
        (grid == NULL || tsr_grid_tp_size(grid) != d->tp || tsr_grid_pp_size(grid) != d->pp ||
         tsr_grid_ep_size(grid) != d->ep || tsr_grid_ep_rank(grid) != d->ep_rank))
        return tsr_error_set(TSR_ERR_INTERNAL, "a tensor-, pipeline- or expert-parallel model "
                                               "needs the grid of its groups");
    net->tp.grid = grid;
    net->tp.size = d->tp;
    net->tp.rank = d->tp_rank;
    if (d->ep > 1 && net->ep_counts == NULL) {
        net->ep_counts = calloc(4 * (size_t)d->ep, sizeof *net->ep_counts);
        if (net->ep_counts == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for %d expert-parallel "
                                                        "peers",
                                 d->ep);
    }
    tsr_status st = memory_walk(net, plan, true);
    if (st != TSR_OK)
        return st;
    for (int i = 0; i < net->node_count; i++) {
        tsr_module_node *node = &net->nodes[i];
        for (int k = 0; k < node->decl.param_count; k++) {
            size_t e = node->param_entry[k];
            const tsr_net_param *p = e != TSR_NET_NO_PARAM ? &net->table[e] : NULL;
            bool held = p != NULL && p->local;
            node->params[k] = held ? tsr_net_param_values(net, p) : NULL;
            node->grads[k] = held && !p->frozen ? net->grads + p->offset : NULL;
        }
    }
    /* the data-parallel replicas hold the same frozen tensors: one writes
     * (of experts split over ep, one per expert-data-parallel group) */
    int dp_rank = grid != NULL ? tsr_grid_dp_rank(grid) : 0;
    int edp_rank = grid != NULL && d->ep > 1 ? tsr_grid_expert_dp_rank(grid) : dp_rank;
    for (size_t i = 0; i < net->tensor_count; i++) {
        const tsr_tensor_desc *t = &net->tensors[i];
        bool split = t->experts > 1 && d->ep > 1 && t->row_count < t->rows;
        if (t->frozen && (split ? edp_rank : dp_rank) != 0)
            net->tensors[i].writer = false;
    }
    init_params(net);
    if (net->action_count > 0) {
        tsr_pp_schedule_spec spec = tsr_net_schedule_spec(d, d->pp_rank);
        size_t built = 0;
        st = tsr_pp_schedule_build(&spec, net->actions, net->action_count, &built);
        if (st != TSR_OK)
            return st;
        net->action_count = built;
    }
    net->exec.net = net;
    tsr_net_select_slot(net, 0);
    return TSR_OK;
}

float *tsr_net_buffer(const tsr_net *net, const tsr_module_node *node, int b, float *unit_saved)
{
    const tsr_buffer_decl *buf = &node->decl.buffers[b];
    if (!buf->enabled)
        return NULL;
    return (buf->life == TSR_BUFFER_SAVED ? unit_saved : net->scratch) + node->buffer_offset[b];
}
