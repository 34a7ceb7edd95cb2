/*
 * net_tables.c - what the builder derives from the parameter table once
 * every module is declared: offsets (trainable and frozen arrays), the
 * checkpoint tensor descriptors, the optimizer spans, and each unit's first
 * parameter (data-parallel buckets start behind it).
 */
#include <stdlib.h>

#include "net_internal.h"
#include "train/optimizer.h"

/* ------------------------------------------------------- derived tables */

/* Under expert parallelism a parameter of the expert region: summed over
 * the expert-data-parallel group, so it lies apart from the dense ones. */
static bool in_expert_region(const tsr_net *net, const tsr_net_param *p)
{
    return net->d.ep > 1 && p->split == TSR_PARAM_SPLIT_EXPERTS && !p->frozen;
}

/* Trainable parameters in table order in one array, frozen ones in
 * another; under expert parallelism the trainable experts come first, in
 * a region padded to dp x TSR_SHARD_ALIGN_FLOATS floats, so that both
 * regions cut into the distributed optimizer's equal slices. */
static void assign_offsets(tsr_net *net)
{
    size_t offset = 0, frozen = 0;
    for (int pass = net->d.ep > 1 ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; i < net->param_count_entries; i++) {
            tsr_net_param *p = &net->table[i];
            if (!p->local || in_expert_region(net, p) != (pass == 0))
                continue;
            size_t *next = p->frozen ? &frozen : &offset;
            p->offset = *next;
            /* 16-float alignment keeps every parameter on its own cache lines */
            *next += ((size_t)(p->local_rows * p->local_cols) + 15) / 16 * 16;
        }
        if (pass == 0) {
            size_t unit = (size_t)net->d.dp * TSR_SHARD_ALIGN_FLOATS;
            offset = (offset + unit - 1) / unit * unit;
            net->expert_numel = offset;
        }
    }
    net->numel = offset;
    net->frozen_numel = frozen;
}

/* Checkpoint blocks of parameter p (the same on every rank): a gate/up
 * pair is two; experts cut over tp by rows, one per expert (two under
 * GATE_UP) of this rank's. */
static size_t block_count(const tsr_net *net, const tsr_net_param *p)
{
    if (p->split == TSR_PARAM_SPLIT_GATE_UP)
        return 2;
    if (p->split != TSR_PARAM_SPLIT_EXPERTS)
        return 1;
    size_t local_experts = (size_t)(p->experts / net->d.ep);
    if (p->expert_split == TSR_PARAM_SPLIT_ROWS)
        return local_experts;
    if (p->expert_split == TSR_PARAM_SPLIT_GATE_UP)
        return 2 * local_experts;
    return 1;
}

/* This rank's experts of p, at net->tensors[net->tensor_count ..]: whole
 * (one block; written by tp rank 0), or each expert cut over tp (every tp
 * rank writes its pieces): by columns one block, by rows (or gate and up
 * halves) one block per expert (per half). */
static void describe_experts(tsr_net *net, const tsr_net_param *p, tsr_tensor_desc *t)
{
    const tsr_net_dims *d = &net->d;
    int64_t el = p->experts / d->ep, per_expert = p->rows / p->experts;
    t->row_start = (int64_t)d->ep_rank * el * per_expert;
    t->row_count = p->local_rows;
    t->writer = d->tp_rank == 0 || p->expert_split != TSR_PARAM_SPLIT_NONE;
    if (p->expert_split == TSR_PARAM_SPLIT_COLS) {
        t->col_start = (int64_t)d->tp_rank * p->local_cols;
        t->col_count = p->local_cols;
    }
    if (p->expert_split != TSR_PARAM_SPLIT_ROWS && p->expert_split != TSR_PARAM_SPLIT_GATE_UP)
        return;
    int halves = p->expert_split == TSR_PARAM_SPLIT_GATE_UP ? 2 : 1;
    int64_t piece = per_expert / d->tp / halves; /* rows of one half of one expert here */
    tsr_tensor_desc base = *t;
    size_t k = 0;
    for (int64_t i = 0; i < el; i++)
        for (int h = 0; h < halves; h++, k++) {
            tsr_tensor_desc *b = t + k;
            *b = base;
            b->row_start = ((int64_t)d->ep_rank * el + i) * per_expert + h * (per_expert / halves) +
                           (int64_t)d->tp_rank * piece;
            b->row_count = piece;
            b->offset = p->offset + (size_t)((i * halves + h) * piece * p->cols);
        }
    net->tensor_count += k - 1; /* the caller counts the last */
}

/* The blocks of parameter p this rank holds. Vocabulary tables are
 * described at the real vocabulary: the padding depends on the TP size,
 * so a checkpoint must not hold it. Replicated parameters are written by
 * tp rank 0 only; the tied copy by the first stage's original. */
static void describe(tsr_net *net, const tsr_net_param *p)
{
    const tsr_net_dims *d = &net->d;
    bool vocab = p->split == TSR_PARAM_SPLIT_VOCAB;
    int64_t rows = vocab ? d->vocab : p->rows;
    tsr_tensor_desc *t = &net->tensors[net->tensor_count];
    if (!p->local) {
        /* another stage's: described all the same (with as many blocks as
         * its holder), so every rank walks the same list of names, which
         * checkpoints create collectively */
        *t = (tsr_tensor_desc){p->name, rows, p->cols, 0, 0, 0, 0, 0, false, false, false, 0};
        t->frozen = p->frozen;
        t->adapter = (p->flags & TSR_PARAM_ADAPTER) != 0;
        t->experts = p->experts;
        size_t blocks = block_count(net, p);
        for (size_t k = 1; k < blocks; k++)
            t[k] = *t;
        net->tensor_count += blocks;
        return;
    }
    *t = (tsr_tensor_desc){p->name, rows,      p->cols, 0,     p->rows, 0,
                           p->cols, p->offset, true,    false, false,   0};
    switch (p->split) {
    case TSR_PARAM_SPLIT_NONE:
    case TSR_PARAM_SPLIT_COUNT:
        t->row_count = rows;
        t->writer = d->tp_rank == 0;
        break;
    case TSR_PARAM_SPLIT_EXPERTS:
        describe_experts(net, p, t);
        break;
    case TSR_PARAM_SPLIT_ROWS:
    case TSR_PARAM_SPLIT_VOCAB: {
        int64_t start = (int64_t)d->tp_rank * p->local_rows;
        int64_t end = start + p->local_rows < rows ? start + p->local_rows : rows;
        t->row_start = start;
        t->row_count = end > start ? end - start : 0;
        break;
    }
    case TSR_PARAM_SPLIT_COLS:
        t->col_start = (int64_t)d->tp_rank * p->local_cols;
        t->col_count = p->local_cols;
        break;
    case TSR_PARAM_SPLIT_GATE_UP: {
        int64_t half = p->local_rows / 2, total_half = p->rows / 2;
        t->row_start = (int64_t)d->tp_rank * half;
        t->row_count = half;
        tsr_tensor_desc *up = &net->tensors[++net->tensor_count];
        *up = *t;
        up->row_start = total_half + (int64_t)d->tp_rank * half;
        up->offset = p->offset + (size_t)(half * p->cols);
        break;
    }
    }
    if (p->tied_copy)
        t->writer = false;
    /* every block (a gate/up pair's up half, copied above, or an expert's
     * last piece is the current entry then) */
    for (tsr_tensor_desc *h = t; h <= &net->tensors[net->tensor_count]; h++) {
        h->frozen = p->frozen;
        h->adapter = (p->flags & TSR_PARAM_ADAPTER) != 0;
        h->experts = p->experts;
    }
    net->tensor_count++;
}

/* Neighbouring parameters (in memory order) with the same decay and
 * no-fp32-read flags share a span, which runs up to the next one (over
 * the padding). */
static void build_spans(tsr_net *net, size_t *order)
{
    size_t n = 0;
    for (size_t i = 0; i < net->param_count_entries; i++) {
        const tsr_net_param *p = &net->table[i];
        if (!p->local || p->frozen)
            continue;
        size_t at = n++; /* insertion by offset: table order but for the expert region */
        while (at > 0 && net->table[order[at - 1]].offset > p->offset) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    size_t count = 0;
    for (size_t k = 0; k < n; k++) {
        const tsr_net_param *p = &net->table[order[k]];
        size_t end = k + 1 < n ? net->table[order[k + 1]].offset : net->numel;
        bool decay = (p->flags & TSR_PARAM_DECAY) != 0;
        bool no_fp32_read = (p->flags & TSR_PARAM_NO_FP32_READ) != 0;
        if (count > 0 && net->spans[count - 1].decay == decay &&
            net->spans[count - 1].no_fp32_read == no_fp32_read) {
            net->spans[count - 1].count = end - net->spans[count - 1].offset;
        } else {
            net->spans[count] =
                (tsr_param_span){p->offset, end - p->offset, decay, no_fp32_read};
            count++;
        }
    }
    net->span_count = count;
}

tsr_status tsr_net_derive_tables(tsr_net *net)
{
    size_t n = net->param_count_entries;
    assign_offsets(net);
    net->spans = calloc(n + 1, sizeof *net->spans);
    size_t blocks = 1;
    for (size_t i = 0; i < n; i++)
        blocks += block_count(net, &net->table[i]);
    net->tensors = calloc(blocks, sizeof *net->tensors);
    size_t *order = calloc(n + 1, sizeof *order);
    if (net->spans == NULL || net->tensors == NULL || order == NULL) {
        free(order);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    }
    build_spans(net, order);
    free(order);
    for (size_t i = 0; i < n; i++) {
        net->table[i].first_tensor = net->tensor_count;
        describe(net, &net->table[i]);
        net->table[i].tensor_blocks = net->tensor_count - net->table[i].first_tensor;
    }
    for (int u = 0; u < net->unit_count; u++)
        net->units[u].first_param = net->numel;
    for (int i = 0; i < net->node_count; i++) {
        const tsr_module_node *node = &net->nodes[i];
        tsr_net_unit *u = &net->units[node->unit];
        for (int k = 0; k < node->decl.param_count; k++) {
            size_t e = node->param_entry[k];
            /* the expert region lies below every dense parameter: it is
             * reduced once backward is over */
            if (e != TSR_NET_NO_PARAM && net->table[e].local && !net->table[e].frozen &&
                e != net->embedding_entry && !in_expert_region(net, &net->table[e]) &&
                net->table[e].offset < u->first_param)
                u->first_param = net->table[e].offset;
        }
    }
    return TSR_OK;
}
