/*
 * net_build.c - spec -> declared module nodes, checked against the layout,
 * and the parameter table, checkpoint descriptors and optimizer spans
 * derived from the declarations.
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
#include "sharding/pipeline_layers.h"

/* ------------------------------------------------------------------ dims */

tsr_net_dims tsr_net_dims_from_config(const tsr_config *cfg, int64_t vocab_size, int tp_rank)
{
    tsr_net_dims d;
    memset(&d, 0, sizeof d);
    d.layers = cfg->num_layers;
    d.hidden = cfg->hidden_size;
    d.vocab = vocab_size;
    d.padded_vocab = tsr_config_padded_vocab_size(cfg, (int)vocab_size);
    d.seq = cfg->seq_length;
    d.micro_batch = cfg->micro_batch_size;
    d.tp = cfg->tensor_model_parallel_size;
    d.tp_rank = tp_rank;
    d.sp = cfg->sequence_parallel && d.tp > 1;
    d.l_vocab = d.padded_vocab / d.tp;
    d.vocab_start = (int64_t)tp_rank * d.l_vocab;
    d.l_seq = d.sp ? d.seq / d.tp : d.seq;
    d.pp = 1;
    d.chunks = 1;
    d.chunk_layers[0] = cfg->num_layers;
    d.has_embedding = d.has_head = true;
    d.local_layers = d.layers;
    d.slots = 1;
    d.microbatches = 1;
    return d;
}

static tsr_pp_schedule_spec schedule_spec(const tsr_net_dims *d, int pp_rank)
{
    tsr_pp_schedule_spec spec = {d->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                               : TSR_PP_SCHEDULE_1F1B,
                                 d->pp, pp_rank, d->microbatches, d->chunks};
    return spec;
}

tsr_status tsr_net_dims_set_pipeline(tsr_net_dims *d, const tsr_config *cfg, int pp_rank,
                                     int microbatches)
{
    tsr_pp_layer_split split;
    tsr_status st = tsr_pp_layers_from_config(cfg, &split);
    if (st != TSR_OK)
        return st;
    if (split.num_chunks > TSR_NET_MAX_CHUNKS)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%d virtual pipeline stages per rank; at most "
                                                  "%d are supported",
                             split.num_chunks, TSR_NET_MAX_CHUNKS);
    d->pp = split.pp_size;
    d->pp_rank = pp_rank;
    d->chunks = split.num_chunks;
    d->local_layers = 0;
    for (int c = 0; c < d->chunks; c++) {
        st = tsr_pp_layers_range(&split, pp_rank, c, &d->chunk_first_layer[c],
                                 &d->chunk_layers[c]);
        if (st != TSR_OK)
            return st;
        d->local_layers += d->chunk_layers[c];
    }
    d->has_embedding = tsr_pp_layers_has_embedding(&split, pp_rank, 0);
    d->has_head = tsr_pp_layers_has_head(&split, pp_rank, d->chunks - 1);
    d->microbatches = microbatches;
    d->slots = 1;
    if (d->pp > 1) {
        tsr_pp_schedule_spec spec = schedule_spec(d, pp_rank);
        st = tsr_pp_schedule_max_in_flight(&spec, &d->slots);
    }
    return st;
}

size_t tsr_net_schedule_length(const tsr_net_dims *d)
{
    if (d->pp <= 1)
        return 0;
    tsr_pp_schedule_spec spec = schedule_spec(d, d->pp_rank);
    size_t count = 0;
    return tsr_pp_schedule_count(&spec, &count) == TSR_OK ? count : 0;
}

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
    case TSR_PARAM_SPLIT_EXPERTS:
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "parameter %s is split by experts; this build has no expert "
                             "parallelism yet",
                             name);
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
    e->local = unit->local;
    e->frozen = (p->flags & TSR_PARAM_FROZEN) != 0;
    st = local_shape(net, name, p, &e->local_rows, &e->local_cols);
    if (st != TSR_OK)
        return st;
    for (size_t i = 0; i < net->param_count_entries; i++)
        if (!net->table[i].tied_copy && strcmp(net->table[i].name, name) == 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "two parameters are named %s; give the modules distinct names",
                                 name);
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
        if ((unsigned)p->split >= TSR_PARAM_SPLIT_COUNT)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter %s has an unknown split kind %d",
                                 name, kind->name, p->suffix, (int)p->split);
        if ((p->flags & TSR_PARAM_FROZEN) && (p->flags & TSR_PARAM_TIED_EMBEDDING))
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): parameter %s is both frozen and tied to the "
                                 "embedding; freeze the embedding's table instead",
                                 name, kind->name, p->suffix);
        if (p->flags & TSR_PARAM_EXPERT)
            return tsr_error_set(TSR_ERR_UNSUPPORTED,
                                 "module %s (%s): parameter %s is an expert parameter; this "
                                 "build has no expert parallelism yet",
                                 name, kind->name, p->suffix);
    }
    for (int i = 0; i < decl->buffer_count; i++) {
        const tsr_buffer_decl *b = &decl->buffers[i];
        if (b->enabled && b->cols <= 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s): buffer %s has %lld columns", name, kind->name,
                                 b->name, (long long)b->cols);
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

/* ------------------------------------------------------- derived tables */

/* Trainable parameters in table order in one array, frozen ones in
 * another. */
static void assign_offsets(tsr_net *net)
{
    size_t offset = 0, frozen = 0;
    for (size_t i = 0; i < net->param_count_entries; i++) {
        tsr_net_param *p = &net->table[i];
        if (!p->local)
            continue;
        size_t *next = p->frozen ? &frozen : &offset;
        p->offset = *next;
        /* 16-float alignment keeps every parameter on its own cache lines */
        *next += ((size_t)(p->local_rows * p->local_cols) + 15) / 16 * 16;
    }
    net->numel = offset;
    net->frozen_numel = frozen;
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
        *t = (tsr_tensor_desc){p->name, rows, p->cols, 0, 0, 0, 0, 0, false, false};
        net->tensor_count++;
        if (p->split == TSR_PARAM_SPLIT_GATE_UP)
            net->tensors[net->tensor_count++] = *t;
        return;
    }
    *t = (tsr_tensor_desc){p->name, rows, p->cols, 0, p->rows, 0, p->cols, p->offset, true, false};
    switch (p->split) {
    case TSR_PARAM_SPLIT_NONE:
    case TSR_PARAM_SPLIT_EXPERTS:
    case TSR_PARAM_SPLIT_COUNT:
        t->row_count = rows;
        t->writer = d->tp_rank == 0;
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
    t->frozen = p->frozen;
    net->tensor_count++;
}

/* Neighbouring parameters with the same decay flag share a span. */
static void build_spans(tsr_net *net)
{
    size_t count = 0;
    for (size_t i = 0; i < net->param_count_entries; i++) {
        const tsr_net_param *p = &net->table[i];
        if (!p->local || p->frozen)
            continue;
        size_t end = net->numel; /* up to the next local trainable parameter */
        for (size_t j = i + 1; j < net->param_count_entries; j++)
            if (net->table[j].local && !net->table[j].frozen) {
                end = net->table[j].offset;
                break;
            }
        bool decay = (p->flags & TSR_PARAM_DECAY) != 0;
        if (count > 0 && net->spans[count - 1].decay == decay) {
            net->spans[count - 1].count = end - net->spans[count - 1].offset;
        } else {
            net->spans[count] = (tsr_param_span){p->offset, end - p->offset, decay};
            count++;
        }
    }
    net->span_count = count;
}

static tsr_status derive_tables(tsr_net *net)
{
    size_t n = net->param_count_entries;
    assign_offsets(net);
    net->spans = calloc(n + 1, sizeof *net->spans);
    net->tensors = calloc(2 * n + 1, sizeof *net->tensors);
    if (net->spans == NULL || net->tensors == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory declaring the model");
    build_spans(net);
    for (size_t i = 0; i < n; i++)
        describe(net, &net->table[i]);
    for (int u = 0; u < net->unit_count; u++)
        net->units[u].first_param = net->numel;
    for (int i = 0; i < net->node_count; i++) {
        const tsr_module_node *node = &net->nodes[i];
        tsr_net_unit *u = &net->units[node->unit];
        for (int k = 0; k < node->decl.param_count; k++) {
            size_t e = node->param_entry[k];
            if (e != TSR_NET_NO_PARAM && net->table[e].local && !net->table[e].frozen &&
                e != net->embedding_entry &&
                net->table[e].offset < u->first_param)
                u->first_param = net->table[e].offset;
        }
    }
    return TSR_OK;
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
        st = derive_tables(net);
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
    free(net);
}

/* ------------------------------------------------------------- queries */

int tsr_net_unit_embedding(const tsr_net *net)
{
    (void)net;
    return 0;
}

int tsr_net_unit_layer(const tsr_net *net, int64_t layer)
{
    (void)net;
    return (int)(1 + layer);
}

int tsr_net_unit_final_norm(const tsr_net *net)
{
    return (int)net->d.layers + 1;
}

int tsr_net_unit_head(const tsr_net *net)
{
    return (int)net->d.layers + 2;
}

const tsr_net_dims *tsr_net_get_dims(const tsr_net *net)
{
    return &net->d;
}

const tsr_net_param *tsr_net_params(const tsr_net *net, size_t *count)
{
    *count = net->param_count_entries;
    return net->table;
}

float *tsr_net_param_data(tsr_net *net)
{
    return net->params;
}

float *tsr_net_param_values(tsr_net *net, const tsr_net_param *p)
{
    if (!p->local)
        return NULL;
    return (p->frozen ? net->frozen : net->params) + p->offset;
}

float *tsr_net_grad_data(tsr_net *net)
{
    return net->grads;
}

int64_t tsr_net_global_param_count(const tsr_net *net)
{
    int64_t n = 0;
    for (size_t i = 0; i < net->param_count_entries; i++)
        if (!net->table[i].tied_copy)
            n += net->table[i].rows * net->table[i].cols;
    return n;
}

double tsr_net_flops_per_sample(const tsr_net *net)
{
    if (net->spec->flops_per_sample == NULL)
        return 0.0;
    return net->spec->flops_per_sample(&net->cfg, net->d.padded_vocab);
}
