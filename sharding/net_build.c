/*
 * net_build.c - spec -> declared module nodes, checked against the layout,
 * and the parameter table they declare (net_tables.c derives the rest).
 *
 * The table order is the declaration order: embedding, each layer's
 * modules in spec order, final norm, head. It is the memory order of the
 * parameters too, so that parameters lie in forward order and backward
 * finishes them from the end (data-parallel buckets start early).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/* ------------------------------------------------------------ declaring */

static tsr_status grow_nodes(tsr_net *net)
{
    if (net->node_count < net->node_capacity)
        return TSR_OK;
    int capacity = net->node_capacity > 0 ? 2 * net->node_capacity : 64;
    tsr_module_node *nodes = realloc(net->nodes, (size_t)capacity * sizeof *nodes);
    if (nodes == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    net->nodes = nodes;
    net->node_capacity = capacity;
    return TSR_OK;
}

static tsr_status grow_table(tsr_net *net)
{
    if (net->param_count_entries < net->table_capacity)
        return TSR_OK;
    size_t capacity = net->table_capacity > 0 ? 2 * net->table_capacity : 128;
    tsr_net_param *table = realloc(net->table, capacity * sizeof *table);
    if (table == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    net->table = table;
    net->table_capacity = capacity;
    return TSR_OK;
}

static void join_name(char *out, size_t size, const char *prefix, const char *name)
{
    if (prefix[0] == '\0')
        snprintf(out, size, "%s", name != NULL ? name : "");
    else if (name == NULL || name[0] == '\0')
        snprintf(out, size, "%s", prefix);
    else
        snprintf(out, size, "%s.%s", prefix, name);
}

/* The local block of a declared parameter, or an error saying why the
 * split does not fit this layout. */
static tsr_status local_shape(const tsr_net *net, const char *name, const tsr_param_decl *p,
                              int64_t *rows, int64_t *cols)
{
    int tp = net->d.tp;
    *rows = p->rows;
    *cols = p->cols;
    if (p->rows <= 0 || p->cols <= 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "parameter %s has shape %lld x %lld; both "
                                                  "sizes must be positive",
                             name, (long long)p->rows, (long long)p->cols);
    switch (p->split) {
    case TSR_PARAM_SPLIT_NONE:
        return TSR_OK;
    case TSR_PARAM_SPLIT_ROWS:
    case TSR_PARAM_SPLIT_VOCAB:
        if (p->split == TSR_PARAM_SPLIT_VOCAB && p->rows != net->d.padded_vocab)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "parameter %s is split by vocabulary but has %lld rows; a "
                                 "vocabulary table has the padded vocabulary's %lld rows",
                                 name, (long long)p->rows, (long long)net->d.padded_vocab);
        if (p->rows % tp != 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "parameter %s is split by rows, but its %lld rows are not "
                                 "divisible by --tensor-model-parallel-size %d",
                                 name, (long long)p->rows, tp);
        *rows = p->rows / tp;
        return TSR_OK;
    case TSR_PARAM_SPLIT_GATE_UP:
        if (p->rows % (2 * tp) != 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "parameter %s is split as gate and up halves, but its %lld "
                                 "rows are not divisible by 2 x --tensor-model-parallel-size %d",
                                 name, (long long)p->rows, tp);
        *rows = p->rows / tp;
        return TSR_OK;
    case TSR_PARAM_SPLIT_COLS:
        if (p->cols % tp != 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "parameter %s is split by columns, but its %lld columns are "
                                 "not divisible by --tensor-model-parallel-size %d",
                                 name, (long long)p->cols, tp);
        *cols = p->cols / tp;
        return TSR_OK;
    case TSR_PARAM_SPLIT_EXPERTS: {
        if (p->experts < 1 || p->experts % net->d.ep != 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "parameter %s stacks %lld experts, not divisible by "
                                 "--expert-model-parallel-size %d",
                                 name, (long long)p->experts, net->d.ep);
        *rows = p->rows / net->d.ep;
        int64_t per_expert = p->rows / p->experts;
        int64_t unit = p->expert_split == TSR_PARAM_SPLIT_GATE_UP ? 2 * tp : tp;
        bool by_rows = p->expert_split == TSR_PARAM_SPLIT_ROWS ||
                       p->expert_split == TSR_PARAM_SPLIT_GATE_UP;
        if ((by_rows && per_expert % unit != 0) ||
            (p->expert_split == TSR_PARAM_SPLIT_COLS && p->cols % tp != 0))
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "parameter %s splits each expert's %lld x %lld block over "
                                 "--tensor-model-parallel-size %d, which does not divide it",
                                 name, (long long)per_expert, (long long)p->cols, tp);
        if (by_rows)
            *rows /= tp;
        if (p->expert_split == TSR_PARAM_SPLIT_COLS)
            *cols = p->cols / tp;
        return TSR_OK;
    }
    case TSR_PARAM_SPLIT_COUNT:
        break;
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG, "parameter %s has an unknown split kind %d", name,
                         (int)p->split);
}

static tsr_status add_entry(tsr_net *net, const tsr_net_unit *unit, const char *name,
                            const tsr_param_decl *p, size_t *entry)
{
    tsr_status st = grow_table(net);
    if (st != TSR_OK)
        return st;
    tsr_net_param *e = &net->table[net->param_count_entries];
    memset(e, 0, sizeof *e);
    if (strlen(name) >= sizeof e->name)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "parameter name %s is longer than %zu characters",
                             name, sizeof e->name - 1);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->rows = p->rows;
    e->cols = p->cols;
    e->split = p->split;
    e->flags = p->flags;
    e->init = p->init;
    e->init_value = p->init_value;
    e->experts = p->experts;
    e->expert_split = p->expert_split;
    e->local = unit->local;
    /* a run that trains adapters only (--lora-rank) freezes everything else */
    bool adapters_only = net->cfg.lora_rank > 0;
    e->frozen = (p->flags & TSR_PARAM_FROZEN) != 0 ||
                (adapters_only && (p->flags & TSR_PARAM_ADAPTER) == 0);
    st = local_shape(net, name, p, &e->local_rows, &e->local_cols);
    if (st != TSR_OK)
        return st;
    *entry = net->param_count_entries++;
    return TSR_OK;
}

/* The head's tied weight: the embedding table itself on one stage, else a
 * copy on the last stage named like the table (Megatron's embedding group). */
static tsr_status add_tied(tsr_net *net, const tsr_net_unit *unit, const char *name,
                           const tsr_param_decl *p, size_t *entry)
{
    if (net->embedding_entry == TSR_NET_NO_PARAM)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s is tied to the embedding table, but the embedding declares no "
                             "vocabulary-split parameter",
                             name);
    const tsr_net_param *emb = &net->table[net->embedding_entry];
    if (p->rows != emb->rows || p->cols != emb->cols)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s is tied to %s but has shape %lld x %lld instead of %lld x %lld",
                             name, emb->name, (long long)p->rows, (long long)p->cols,
                             (long long)emb->rows, (long long)emb->cols);
    net->tied = true;
    if (net->d.pp == 1) {
        *entry = net->embedding_entry;
        return TSR_OK;
    }
    tsr_status st = grow_table(net);
    if (st != TSR_OK)
        return st;
    tsr_net_param *e = &net->table[net->param_count_entries];
    *e = net->table[net->embedding_entry];
    e->local = unit->local && !net->d.has_embedding;
    e->tied_copy = true;
    *entry = net->param_count_entries++;
    return TSR_OK;
}

static tsr_status check_decl(const char *name, const tsr_module_kind *kind,
                             const tsr_module_decl *decl)
{
    if (decl->param_count > TSR_MODULE_MAX_PARAMS || decl->buffer_count > TSR_MODULE_MAX_BUFFERS)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "module %s (%s) declares more than %d "
                                                  "parameters or %d buffers",
                             name, kind->name, TSR_MODULE_MAX_PARAMS, TSR_MODULE_MAX_BUFFERS);
    for (int i = 0; i < decl->param_count; i++) {
        const tsr_param_decl *p = &decl->params[i];
        if (!p->enabled)
            continue;
        if (p->suffix[0] == '\0')
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter slot %d has no name, or one longer "
                                 "than %zu characters",
                                 name, kind->name, i, sizeof p->suffix - 1);
        if ((unsigned)p->split >= TSR_PARAM_SPLIT_COUNT)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter %s has an unknown split kind %d",
                                 name, kind->name, p->suffix, (int)p->split);
        if ((p->flags & TSR_PARAM_FROZEN) && (p->flags & TSR_PARAM_TIED_EMBEDDING))
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter %s is both frozen and tied to the "
                                 "embedding; freeze the embedding's table instead",
                                 name, kind->name, p->suffix);
        bool expert_split = p->split == TSR_PARAM_SPLIT_EXPERTS;
        tsr_param_split inner = p->expert_split;
        if (inner != TSR_PARAM_SPLIT_NONE &&
            (!expert_split || !(inner == TSR_PARAM_SPLIT_ROWS || inner == TSR_PARAM_SPLIT_GATE_UP ||
                                inner == TSR_PARAM_SPLIT_COLS)))
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter %s cuts its experts over tp, but is "
                                 "not split by experts or cuts them other than by rows, gate/up "
                                 "halves or columns (tsr_decl_expert_split)",
                                 name, kind->name, p->suffix);
        if ((p->experts > 1 || expert_split) &&
            (p->experts < 1 || p->rows % p->experts != 0 ||
             !(expert_split || p->split == TSR_PARAM_SPLIT_NONE)))
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter %s stacks %lld experts but has %lld "
                                 "rows, or a tensor-parallel split (tsr_decl_experts; split by "
                                 "experts or not at all)",
                                 name, kind->name, p->suffix, (long long)p->experts,
                                 (long long)p->rows);
        if (p->flags & TSR_PARAM_ADAPTER) {
            const tsr_param_decl *base = p->adapts >= 0 && p->adapts < decl->param_count
                                             ? &decl->params[p->adapts]
                                             : NULL;
            /* the halves meet the base's blocks in every layout (what
             * merging relies on): up takes a column-parallel base's row
             * split, down a row-parallel base's column split */
            bool row_split = base != NULL && (base->split == TSR_PARAM_SPLIT_ROWS ||
                                              base->split == TSR_PARAM_SPLIT_GATE_UP);
            bool col_split = base != NULL && base->split == TSR_PARAM_SPLIT_COLS;
            bool fits = base != NULL && base->enabled && !(base->flags & TSR_PARAM_ADAPTER) &&
                        (p->adapter_role == TSR_ADAPTER_DOWN
                             ? p->cols == base->cols &&
                                   p->split == (col_split ? TSR_PARAM_SPLIT_COLS
                                                          : TSR_PARAM_SPLIT_NONE)
                         : p->adapter_role == TSR_ADAPTER_UP
                             ? p->rows == base->rows &&
                                   p->split == (row_split ? base->split : TSR_PARAM_SPLIT_NONE)
                             : false);
            for (int j = 0; fits && j < decl->param_count; j++) {
                const tsr_param_decl *q = &decl->params[j]; /* the other half: the same rank */
                if (j != i && q->enabled && (q->flags & TSR_PARAM_ADAPTER) &&
                    q->adapts == p->adapts && q->adapter_role != p->adapter_role)
                    fits = p->adapter_role == TSR_ADAPTER_UP ? p->cols == q->rows
                                                             : p->rows == q->cols;
            }
            if (!fits)
                return tsr_error_set(TSR_ERR_INVALID_ARG,
                                     "module %s (%s): adapter %s does not fit the weight it "
                                     "adapts (tsr_decl_adapter): an enabled weight of the "
                                     "module, with its %s and their split, and the other "
                                     "half's rank",
                                     name, kind->name, p->suffix,
                                     p->adapter_role == TSR_ADAPTER_UP ? "rows" : "columns");
        }
    }
    for (int i = 0; i < decl->buffer_count; i++) {
        const tsr_buffer_decl *b = &decl->buffers[i];
        if (b->enabled && b->cols <= 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): buffer %s has %lld columns", name, kind->name,
                                 b->name, (long long)b->cols);
        if (b->activation && b->life != TSR_BUFFER_SAVED)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): scratch buffer %s is marked an activation "
                                 "(tsr_decl_activation); only saved buffers are held between "
                                 "forward and backward",
                                 name, kind->name, b->name);
    }
    return TSR_OK;
}

/* Declares spec (and its children, first) for `unit`; *index gets the node. */
static tsr_status declare_node(tsr_net *net, const tsr_spec *spec, int unit, const char *prefix,
                               const tsr_module_info *base, int *index)
{
    char name[160];
    if (spec == NULL || spec->kind == NULL || spec->kind->declare == NULL ||
        spec->kind->forward == NULL || spec->kind->backward == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "model spec: a module under '%s' has no kind, or its kind lacks "
                             "declare, forward or backward",
                             prefix[0] ? prefix : "(top)");
    join_name(name, sizeof name, prefix, spec->name);
    if (spec->child_count < 0 || spec->child_count > TSR_MODULE_MAX_CHILDREN)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "module %s (%s) has %d children", name,
                             spec->kind->name, spec->child_count);
    tsr_module_info info = *base;
    info.config = spec->config;
    info.child_count = spec->child_count;
    int children[TSR_MODULE_MAX_CHILDREN];
    tsr_module_info child_base = *base;
    for (int i = 0; i < spec->child_count; i++) {
        tsr_status st = declare_node(net, spec->children[i], unit, name, &child_base,
                                     &children[i]);
        if (st != TSR_OK)
            return st;
        const tsr_module_decl *cd = &net->nodes[children[i]].decl;
        info.children[i] = (tsr_child_summary){cd->out_rows, cd->out_cols, cd->keeps_input,
                                               cd->in_place_grad};
        child_base.in_rows = cd->out_rows;
        child_base.in_cols = cd->out_cols;
    }
    tsr_module_decl decl;
    memset(&decl, 0, sizeof decl);
    decl.out_rows = info.in_rows;
    decl.out_cols = info.in_cols;
    tsr_status st = spec->kind->declare(&info, &decl);
    if (st != TSR_OK) {
        char message[512];
        snprintf(message, sizeof message, "%s", tsr_last_error());
        return tsr_error_set(st, "module %s (%s): %s", name[0] ? name : "(unnamed)",
                             spec->kind->name, message);
    }
    st = check_decl(name, spec->kind, &decl);
    if (st != TSR_OK)
        return st;
    st = grow_nodes(net);
    if (st != TSR_OK)
        return st;
    int n = net->node_count++;
    tsr_module_node *node = &net->nodes[n];
    memset(node, 0, sizeof *node);
    node->spec = spec;
    node->info = info;
    node->decl = decl;
    node->unit = unit;
    memcpy(node->child, children, sizeof children);
    const tsr_net_unit *u = &net->units[unit];
    for (int i = 0; i < decl.param_count; i++) {
        const tsr_param_decl *p = &decl.params[i];
        node->param_entry[i] = TSR_NET_NO_PARAM;
        if (!p->enabled)
            continue;
        char full[192];
        join_name(full, sizeof full, name, p->suffix);
        st = (p->flags & TSR_PARAM_TIED_EMBEDDING) ? add_tied(net, u, full, p, &node->param_entry[i])
                                                   : add_entry(net, u, full, p, &node->param_entry[i]);
        if (st != TSR_OK)
            return st;
        if (u->role == UNIT_EMBEDDING && p->split == TSR_PARAM_SPLIT_VOCAB &&
            net->embedding_entry == TSR_NET_NO_PARAM)
            net->embedding_entry = node->param_entry[i];
    }
    /* adapters point at the entry of the weight they adapt */
    for (int i = 0; i < decl.param_count; i++) {
        const tsr_param_decl *p = &decl.params[i];
        if (p->enabled && (p->flags & TSR_PARAM_ADAPTER)) {
            tsr_net_param *e = &net->table[node->param_entry[i]];
            e->adapts = node->param_entry[p->adapts];
            e->adapter_role = p->adapter_role;
            e->adapter_scale = p->adapter_scale;
        }
    }
    *index = n;
    return TSR_OK;
}

static tsr_module_info base_info(const tsr_net *net, int64_t layer)
{
    const tsr_net_dims *d = &net->d;
    tsr_module_info info;
    memset(&info, 0, sizeof info);
    info.run = &net->cfg;
    info.layer = layer;
    info.num_layers = d->layers;
    info.micro_batch = d->micro_batch;
    info.seq = d->seq;
    info.local_seq = d->l_seq;
    info.hidden = d->hidden;
    info.in_rows = TSR_ROWS_LOCAL;
    info.in_cols = d->hidden;
    info.tp_size = d->tp;
    info.tp_rank = d->tp_rank;
    info.ep_size = d->ep;
    info.ep_rank = d->ep_rank;
    info.sequence_parallel = d->sp;
    info.vocab = d->vocab;
    info.padded_vocab = d->padded_vocab;
    info.local_vocab = d->l_vocab;
    info.vocab_start = d->vocab_start;
    return info;
}

static bool layer_is_local(const tsr_net_dims *d, int64_t layer, int64_t *local_index)
{
    int64_t base = 0;
    for (int c = 0; c < d->chunks; c++) {
        if (layer >= d->chunk_first_layer[c] && layer < d->chunk_first_layer[c] + d->chunk_layers[c]) {
            *local_index = base + layer - d->chunk_first_layer[c];
            return true;
        }
        base += d->chunk_layers[c];
    }
    return false;
}

static tsr_status check_stream(const tsr_net *net, const tsr_module_node *root, const char *what)
{
    if (root->decl.out_rows != TSR_ROWS_LOCAL || root->decl.out_cols != net->d.hidden)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "model spec: %s must return the residual stream (local rows x "
                             "hidden %lld), but returns %s rows x %lld",
                             what, (long long)net->d.hidden,
                             root->decl.out_rows == TSR_ROWS_LOCAL ? "local" : "other",
                             (long long)root->decl.out_cols);
    return TSR_OK;
}

static int by_param_name(const void *a, const void *b)
{
    const tsr_net_param *x = *(const tsr_net_param *const *)a;
    const tsr_net_param *y = *(const tsr_net_param *const *)b;
    return strcmp(x->name, y->name);
}

/* One name, one tensor of a checkpoint: sorted by name (a tied copy
 * shares its table's), neighbours must differ. Sorting keeps a planner's
 * thousands of builds of a many-layer model from comparing every pair. */
static tsr_status check_unique_names(const tsr_net *net)
{
    size_t n = 0;
    const tsr_net_param **sorted = malloc((net->param_count_entries + 1) * sizeof *sorted);
    if (sorted == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    for (size_t i = 0; i < net->param_count_entries; i++)
        if (!net->table[i].tied_copy)
            sorted[n++] = &net->table[i];
    qsort(sorted, n, sizeof *sorted, by_param_name);
    tsr_status st = TSR_OK;
    for (size_t i = 1; i < n && st == TSR_OK; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "two parameters are named %s; give the modules distinct names",
                               sorted[i]->name);
    free(sorted);
    return st;
}

static tsr_status declare_units(tsr_net *net)
{
    const tsr_model_spec *spec = net->spec;
    const tsr_net_dims *d = &net->d;
    if (spec->embedding == NULL || spec->final_norm == NULL || spec->head == NULL ||
        (spec->layers == NULL && d->layers > 0))
        return tsr_error_set(TSR_ERR_INVALID_ARG, "model spec: the embedding, layers, final norm "
                                                  "and head must all be given");
    if (spec->num_layers != d->layers)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "model spec has %lld layers but --num-layers is %lld",
                             (long long)spec->num_layers, (long long)d->layers);
    if (spec->head->kind == NULL || spec->head->kind->logits == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "model spec: the head's kind must provide "
                                                  "logits (an LM head)");
    net->unit_count = (int)d->layers + 3;
    net->units = calloc((size_t)net->unit_count, sizeof *net->units);
    if (net->units == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    net->embedding_entry = TSR_NET_NO_PARAM;
    tsr_status st;
    /* embedding */
    tsr_net_unit *u = &net->units[0];
    u->role = UNIT_EMBEDDING;
    u->layer = -1;
    u->local = d->has_embedding;
    tsr_module_info info = base_info(net, -1);
    info.in_rows = TSR_ROWS_TOKENS;
    info.in_cols = 1;
    if ((st = declare_node(net, spec->embedding, 0, "", &info, &u->root)) != TSR_OK ||
        (st = check_stream(net, &net->nodes[u->root], "the embedding")) != TSR_OK)
        return st;
    for (int64_t l = 0; l < d->layers; l++) {
        int ui = (int)(1 + l);
        u = &net->units[ui];
        u->role = UNIT_LAYER;
        u->layer = l;
        u->local = layer_is_local(d, l, &u->local_index);
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%s.%lld",
                 spec->layer_prefix != NULL ? spec->layer_prefix : "decoder.layers", (long long)l);
        info = base_info(net, l);
        char what[64];
        snprintf(what, sizeof what, "layer %lld", (long long)l);
        if ((st = declare_node(net, spec->layers[l], ui, prefix, &info, &u->root)) != TSR_OK ||
            (st = check_stream(net, &net->nodes[u->root], what)) != TSR_OK)
            return st;
    }
    int fi = (int)d->layers + 1;
    u = &net->units[fi];
    u->role = UNIT_FINAL_NORM;
    u->layer = d->layers;
    u->local = d->has_head;
    info = base_info(net, d->layers);
    if ((st = declare_node(net, spec->final_norm, fi, "", &info, &u->root)) != TSR_OK)
        return st;
    const tsr_module_node *norm = &net->nodes[u->root];
    u = &net->units[fi + 1];
    u->role = UNIT_HEAD;
    u->layer = d->layers;
    u->local = d->has_head;
    info.in_rows = norm->decl.out_rows;
    info.in_cols = norm->decl.out_cols;
    return declare_node(net, spec->head, fi + 1, "", &info, &u->root);
}

static bool has_adapters(const tsr_net *net)
{
    for (size_t i = 0; i < net->param_count_entries; i++)
        if (net->table[i].flags & TSR_PARAM_ADAPTER)
            return true;
    return false;
}

tsr_status tsr_net_build(const tsr_model_spec *spec, const tsr_config *cfg,
                         const tsr_net_dims *dims, tsr_net **out)
{
    *out = NULL;
    tsr_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    net->cfg = *cfg;
    net->d = *dims;
    net->spec = spec;
    tsr_status st = declare_units(net);
    if (st == TSR_OK)
        st = check_unique_names(net);
    if (st == TSR_OK && cfg->lora_rank > 0 && !has_adapters(net))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--lora-rank %d: model %s declares no adapters (its modules take no "
                           "tsr_lora_config), so every parameter would be frozen",
                           cfg->lora_rank, cfg->model_name != NULL ? cfg->model_name : "gpt");
    if (st == TSR_OK)
        st = tsr_net_derive_tables(net);
    if (st == TSR_OK)
        st = tsr_net_layout_memory(net);
    if (st != TSR_OK) {
        tsr_net_destroy(net);
        return st;
    }
    *out = net;
    return TSR_OK;
}

void tsr_net_destroy(tsr_net *net)
{
    if (net == NULL)
        return;
    free(net->nodes);
    free(net->units);
    free(net->table);
    free(net->spans);
    free(net->tensors);
    free(net->ep_counts);
    tsr_sparse_release(&net->params_block);
    free(net);
}
