/*
 * net_step.c - one micro batch through this rank's units: forward of a
 * pipeline chunk (embedding first if the chunk has it; final norm and
 * head last if it has them), backward of it, evaluation and logits; and
 * what modules call at run time (module.h: children, tp collectives,
 * dropout keys).
 *
 * The residual stream's gradient flows through one buffer (d_stream):
 * a layer whose declaration allows it runs backward in place on it, any
 * other gets a second buffer and the two swap.
 */
#include <string.h>

#include "collectives/comm.h"
#include "net_internal.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

static int64_t n_tok(const tsr_net *net)
{
    return tsr_net_rows(net, TSR_ROWS_TOKENS);
}

static size_t stream_floats(const tsr_net *net)
{
    return (size_t)(tsr_net_rows(net, TSR_ROWS_LOCAL) * net->d.hidden);
}

/* ------------------------------------------------------ running a node */

static float *slot_base(const tsr_net *net)
{
    return net->slots_base + (size_t)net->slot * net->slot_floats;
}

static float *unit_block(const tsr_net *net, const tsr_net_unit *u)
{
    if (u->recomputed)
        return net->recompute_base + (size_t)u->recompute_index * net->recompute_block;
    if (tsr_net_unit_held(net, u))
        return net->staging;
    return slot_base(net) + u->slot_offset;
}

static void make_run(tsr_net *net, const tsr_module_node *node, float **buffers,
                     tsr_module_run *run)
{
    for (int b = 0; b < node->decl.buffer_count; b++)
        buffers[b] = tsr_net_buffer(net, node, b, net->exec.unit_saved);
    *run = (tsr_module_run){&node->info, node->params, node->grads, buffers, &net->exec.io,
                            net->exec.train, node, &net->exec};
}

static tsr_status node_forward(tsr_net *net, int n, const float *in, float *out)
{
    const tsr_module_node *node = &net->nodes[n];
    float *buffers[TSR_MODULE_MAX_BUFFERS];
    tsr_module_run run;
    make_run(net, node, buffers, &run);
    return node->spec->kind->forward(&run, in, out);
}

static tsr_status node_backward(tsr_net *net, int n, const float *in, const float *out,
                                const float *dout, float *din)
{
    const tsr_module_node *node = &net->nodes[n];
    float *buffers[TSR_MODULE_MAX_BUFFERS];
    tsr_module_run run;
    make_run(net, node, buffers, &run);
    return node->spec->kind->backward(&run, in, out, dout, din);
}

/* A training forward leaves its activations for backward as 16-bit
 * values under --bf16 / --fp16 (net_held.c); evaluation keeps nothing. */
static tsr_status unit_forward(tsr_net *net, int u, const float *in, float *out)
{
    const tsr_net_unit *unit = &net->units[u];
    net->exec.unit_saved = unit_block(net, unit);
    double rows = net->expert_log.total.rows, even = net->expert_log.total.even_rows;
    TRY(node_forward(net, unit->root, in, out));
    if (net->exec.io.expert_load != NULL)
        tsr_net_expert_log_note(net, rows, even);
    if (net->exec.train && tsr_net_unit_held(net, unit))
        tsr_net_hold_saved(net, unit, slot_base(net) + unit->slot_offset);
    else if (net->exec.train && unit->recomputed)
        tsr_net_round_held(net, net->exec.unit_saved, unit->activation_floats);
    return TSR_OK;
}

static tsr_status unit_backward(tsr_net *net, int u, const float *in, const float *out,
                                const float *dout, float *din)
{
    const tsr_net_unit *unit = &net->units[u];
    net->exec.unit_saved = unit_block(net, unit);
    if (tsr_net_unit_held(net, unit))
        tsr_net_restore_saved(net, unit, slot_base(net) + unit->slot_offset);
    return node_backward(net, unit->root, in, out, dout, din);
}

tsr_status tsr_module_child_forward(const tsr_module_run *run, int child, const float *in,
                                    float *out)
{
    if (child < 0 || child >= run->node->info.child_count)
        return tsr_error_set(TSR_ERR_INTERNAL, "module %s has no child %d",
                             run->node->spec->kind->name, child);
    return node_forward(run->exec->net, run->node->child[child], in, out);
}

tsr_status tsr_module_child_backward(const tsr_module_run *run, int child, const float *in,
                                     const float *out, const float *dout, float *din)
{
    if (child < 0 || child >= run->node->info.child_count)
        return tsr_error_set(TSR_ERR_INTERNAL, "module %s has no child %d",
                             run->node->spec->kind->name, child);
    return node_backward(run->exec->net, run->node->child[child], in, out, dout, din);
}

int64_t tsr_module_rows(const tsr_module_run *run, tsr_buffer_rows rows)
{
    return tsr_net_rows(run->exec->net, rows);
}

void tsr_module_round_activation(const tsr_module_run *run, float *x, int64_t n)
{
    if (n > 0)
        tsr_net_round_held(run->exec->net, x, (size_t)n);
}

tsr_status tsr_module_tp_sum_at(tsr_call_site site, const tsr_module_run *run, float *x,
                                int64_t n)
{
    return tsr_tp_allreduce_sum(site, &run->exec->net->tp, x, n);
}

tsr_status tsr_module_tp_max_at(tsr_call_site site, const tsr_module_run *run, float *x,
                                int64_t n)
{
    return tsr_tp_allreduce_max(site, &run->exec->net->tp, x, n);
}

static tsr_status check_row_width(const tsr_net *net, int64_t cols)
{
    if (cols > net->d.hidden)
        return tsr_error_set(TSR_ERR_INTERNAL, "sequence gathers move rows of at most hidden "
                                               "(%lld) columns, asked for %lld",
                             (long long)net->d.hidden, (long long)cols);
    return TSR_OK;
}

tsr_status tsr_module_tp_gather_rows_at(tsr_call_site site, const tsr_module_run *run,
                                        float *full, const float *local, int64_t cols)
{
    const tsr_net *net = run->exec->net;
    TRY(check_row_width(net, cols));
    if (net->d.sp)
        return tsr_tp_gather_sequence(site, &net->tp, full, local, net->d.micro_batch,
                                      net->d.l_seq, cols);
    if (full != local) /* one sequence: the local rows are all of them */
        memcpy(full, local, (size_t)(n_tok(net) * cols) * sizeof *full);
    return TSR_OK;
}

tsr_status tsr_module_tp_scatter_rows_at(tsr_call_site site, const tsr_module_run *run,
                                         float *local, const float *full, int64_t cols)
{
    const tsr_net *net = run->exec->net;
    TRY(check_row_width(net, cols));
    if (net->d.sp)
        return tsr_tp_scatter_sequence(site, &net->tp, local, full, net->d.micro_batch,
                                       net->d.l_seq, cols);
    if (local != full)
        memcpy(local, full, (size_t)(n_tok(net) * cols) * sizeof *local);
    return tsr_tp_allreduce_sum(site, &net->tp, local, n_tok(net) * cols);
}

static void dropout_of(const tsr_module_run *run, const char *purpose, uint64_t site, double p,
                       bool local_rows, tsr_dropout *out)
{
    const tsr_net *net = run->exec->net;
    memset(out, 0, sizeof *out);
    out->p = (float)p;
    uint64_t key = tsr_rng_key((uint64_t)net->cfg.seed, purpose);
    key = tsr_rng_key_mix(key, site);
    out->key = tsr_rng_key_mix(key, (uint64_t)run->io->iteration);
    out->sample_offset = run->io->first_sample;
    out->t_global = net->d.seq;
    out->t_offset = local_rows && net->d.sp ? (int64_t)net->d.tp_rank * net->d.l_seq : 0;
}

void tsr_module_dropout(const tsr_module_run *run, int site, double p, bool local_rows,
                        tsr_dropout *out)
{
    dropout_of(run, "dropout", (uint64_t)(run->info->layer * 4 + site), p, local_rows, out);
}

void tsr_module_dropout_keyed(const tsr_module_run *run, const char *purpose, int site, double p,
                              bool local_rows, tsr_dropout *out)
{
    /* the layer and the site in separate mixes: any site, no collision */
    uint64_t key = tsr_rng_key_mix((uint64_t)(run->info->layer + 1), (uint64_t)site);
    dropout_of(run, purpose, key, p, local_rows, out);
}

/* ------------------------------------------------------------- chunks */

static bool chunk_has_embedding(const tsr_net *net, int chunk)
{
    return chunk == 0 && net->d.has_embedding;
}

static bool chunk_has_head(const tsr_net *net, int chunk)
{
    return chunk == net->d.chunks - 1 && net->d.has_head;
}

static chunk_io *current_io(const tsr_net *net, int chunk)
{
    return &net->io[(size_t)net->slot * (size_t)net->d.chunks + (size_t)chunk];
}

static float *layer_output(const tsr_net *net, int64_t layer)
{
    return slot_base(net) + net->units[tsr_net_unit_layer(net, layer)].out_offset;
}

static float *norm_output(const tsr_net *net)
{
    if (!net->norm_out_saved)
        return net->norm_out_scratch;
    return slot_base(net) + net->units[tsr_net_unit_final_norm(net)].out_offset;
}

void tsr_net_select_slot(tsr_net *net, int slot)
{
    net->slot = slot;
}

float *tsr_net_chunk_output(tsr_net *net, int chunk)
{
    int n = net->d.chunk_layers[chunk];
    if (n == 0)
        return current_io(net, chunk)->x_in;
    return layer_output(net, net->d.chunk_first_layer[chunk] + n - 1);
}

static void set_io(tsr_net *net, const tsr_microbatch *mb, bool train)
{
    net->exec.train = train;
    net->exec.io = (tsr_step_io){mb->tokens,    mb->targets,      net->row_weight,
                                 net->row_loss, net->row_correct, mb->first_sample,
                                 mb->iteration, mb->doc_start,    mb->prefix_lo,
                                 mb->prefix_hi, net->decode_rows > 0 ? net->decode_position : -1,
                                 net->loss_scale, train ? &net->aux_loss : NULL,
                                 train ? &net->expert_log.total : NULL};
}

/* embedding, the chunk's layers, and (head chunk) the final norm, then the
 * head's loss unless only the logits are wanted */
static tsr_status forward_stack(tsr_net *net, const tsr_microbatch *mb, int chunk, bool train,
                                bool head)
{
    const tsr_net_dims *d = &net->d;
    set_io(net, mb, train);
    chunk_io *io = current_io(net, chunk);
    size_t n = stream_floats(net);
    const float *x;
    if (chunk_has_embedding(net, chunk)) {
        float *y = tsr_net_stream_target(net, io->x_in, 0);
        TRY(unit_forward(net, tsr_net_unit_embedding(net), NULL, y));
        tsr_net_keep_stream(net, y, io->x_in, n);
        x = y;
    } else {
        x = tsr_net_stream_view(net, io->x_in, 0, n);
    }
    for (int j = 0; j < d->chunk_layers[chunk]; j++) {
        int64_t l = d->chunk_first_layer[chunk] + j;
        float *y = tsr_net_stream_target(net, layer_output(net, l), (j + 1) & 1);
        TRY(unit_forward(net, tsr_net_unit_layer(net, l), x, y));
        tsr_net_keep_stream(net, y, layer_output(net, l), n);
        x = y;
    }
    if (!chunk_has_head(net, chunk))
        return TSR_OK;
    TRY(unit_forward(net, tsr_net_unit_final_norm(net), x, norm_output(net)));
    if (!head)
        return TSR_OK;
    return unit_forward(net, tsr_net_unit_head(net), norm_output(net), NULL);
}

/* Tells the trainer (mb->grads_ready) that every gradient from `from` on
 * is final, so data-parallel buckets there can start. Parameters lie in
 * forward order, so after a unit's backward that is everything from its
 * first parameter on; the tied embedding at offset 0 is final only at the
 * end. Under sequence parallelism the SP-partial gradients are summed
 * only in finish_grads, so nothing is reported early. */
static void report_grads_ready(const tsr_net *net, const tsr_microbatch *mb, int unit)
{
    if (mb->grads_ready != NULL && !net->d.sp && net->d.pp == 1)
        mb->grads_ready(mb->grads_ready_ctx, net->units[unit].first_param);
}

/* layer l's backward; in_store keeps its input (tsr_net_stream_view) */
static tsr_status backward_layer(tsr_net *net, int64_t l, const float *in_store)
{
    int u = tsr_net_unit_layer(net, l);
    const tsr_module_node *root = &net->nodes[net->units[u].root];
    size_t n = stream_floats(net);
    const float *in = tsr_net_stream_view(net, in_store, 0, n);
    const float *out = tsr_net_stream_view(net, layer_output(net, l), 1, n);
    if (root->decl.in_place_grad)
        return unit_backward(net, u, in, out, net->d_stream, net->d_stream);
    memset(net->d_other, 0, n * sizeof(float));
    TRY(unit_backward(net, u, in, out, net->d_stream, net->d_other));
    float *t = net->d_stream;
    net->d_stream = net->d_other;
    net->d_other = t;
    return TSR_OK;
}

static tsr_status backward_stack(tsr_net *net, const tsr_microbatch *mb, int chunk)
{
    const tsr_net_dims *d = &net->d;
    set_io(net, mb, true);
    int n = d->chunk_layers[chunk];
    size_t floats = stream_floats(net);
    chunk_io *io = current_io(net, chunk);
    if (chunk_has_head(net, chunk)) {
        const float *last = tsr_net_stream_view(net, tsr_net_chunk_output(net, chunk), 0, floats);
        const float *kept = net->norm_out_saved ? norm_output(net) : NULL;
        const tsr_module_node *norm = &net->nodes[net->units[tsr_net_unit_final_norm(net)].root];
        size_t norm_floats = (size_t)(tsr_net_rows(net, norm->decl.out_rows) * norm->decl.out_cols);
        memset(net->d_norm, 0, norm_floats * sizeof(float));
        TRY(unit_backward(net, tsr_net_unit_head(net), kept, NULL, NULL, net->d_norm));
        memset(net->d_stream, 0, floats * sizeof(float));
        TRY(unit_backward(net, tsr_net_unit_final_norm(net), last, kept, net->d_norm,
                          net->d_stream));
        report_grads_ready(net, mb, tsr_net_unit_final_norm(net));
    } else {
        memcpy(net->d_stream, io->d_recv, floats * sizeof(float));
    }
    for (int j = n - 1; j >= 0; j--) {
        int64_t l = d->chunk_first_layer[chunk] + j;
        int first = 0, count = 0;
        if (tsr_net_recomputed(net, j, n, &first, &count) && j == first + count - 1) {
            /* forward of the group again, from its saved input: the same
             * kernels, inputs and dropout keys give the same activations
             * (and the same loss terms, counted once already) */
            net->exec.train = true;
            net->exec.io.aux_loss = NULL;
            net->exec.io.expert_load = NULL;
            for (int k = first; k < first + count; k++) {
                int64_t lk = d->chunk_first_layer[chunk] + k;
                const float *in = k > 0 ? layer_output(net, lk - 1) : io->x_in;
                float *y = tsr_net_stream_target(net, layer_output(net, lk), 1);
                TRY(unit_forward(net, tsr_net_unit_layer(net, lk),
                                 tsr_net_stream_view(net, in, 0, floats), y));
                tsr_net_keep_stream(net, y, layer_output(net, lk), floats);
            }
        }
        TRY(backward_layer(net, l, j > 0 ? layer_output(net, l - 1) : io->x_in));
        report_grads_ready(net, mb, tsr_net_unit_layer(net, l));
    }
    if (chunk_has_embedding(net, chunk))
        return unit_backward(net, tsr_net_unit_embedding(net), NULL,
                             tsr_net_stream_view(net, io->x_in, 1, floats), net->d_stream, NULL);
    memcpy(io->d_send, net->d_stream, floats * sizeof(float));
    return TSR_OK;
}

/* -------------------------------------------------------- micro batches */

static tsr_status check_tokens(const tsr_net *net, const int32_t *tokens, const int32_t *targets)
{
    int64_t n = n_tok(net), vocab = net->d.vocab;
    for (int64_t r = 0; r < n; r++) {
        int32_t bad;
        if (tokens[r] < 0 || tokens[r] >= vocab)
            bad = tokens[r];
        else if (targets != NULL && (targets[r] < 0 || targets[r] >= vocab))
            bad = targets[r];
        else
            continue;
        return tsr_error_set(TSR_ERR_FORMAT,
                             "token id %d at position %lld is outside the vocabulary of %lld; "
                             "the dataset and --vocab-size disagree",
                             (int)bad, (long long)r, (long long)vocab);
    }
    return TSR_OK;
}

static double masked_mean_loss(const tsr_net *net, const float *mask)
{
    double sum = 0.0, count = 0.0;
    for (int64_t r = 0; r < n_tok(net); r++) {
        sum += (double)mask[r] * (double)net->row_loss[r];
        count += mask[r];
    }
    return count > 0.0 ? sum / count : 0.0;
}

tsr_status tsr_net_forward_chunk(tsr_net *net, const tsr_microbatch *mb, int chunk, bool train,
                                 double *loss)
{
    if (chunk_has_embedding(net, chunk) || chunk_has_head(net, chunk))
        TRY(check_tokens(net, mb->tokens, mb->targets));
    TRY(forward_stack(net, mb, chunk, train, true));
    if (chunk_has_head(net, chunk) && loss != NULL)
        *loss = masked_mean_loss(net, mb->mask);
    return TSR_OK;
}

tsr_status tsr_net_backward_chunk(tsr_net *net, const tsr_microbatch *mb, int chunk)
{
    return backward_stack(net, mb, chunk);
}

/* Per-token loss weights of a training micro batch: its mask over its
 * masked-token count, times the caller's scale (1 / micro batches). */
void tsr_net_set_loss_weights(tsr_net *net, const tsr_microbatch *mb, float loss_scale)
{
    int64_t n = n_tok(net);
    double tokens = 0.0;
    for (int64_t r = 0; r < n; r++)
        tokens += mb->mask[r];
    float per_token = tokens > 0.0 ? loss_scale / (float)tokens : 0.0f;
    net->loss_scale = loss_scale;
    for (int64_t r = 0; r < n; r++)
        net->row_weight[r] = mb->mask[r] * per_token;
}

double tsr_net_take_aux_loss(tsr_net *net)
{
    double v = net->aux_loss;
    net->aux_loss = 0.0;
    return v;
}

static double net_take_aux_loss(void *self)
{
    tsr_net *net = self;
    double v = tsr_net_take_aux_loss(net);
    return net->d.tp_rank == 0 ? v : 0.0; /* one per tensor-parallel group */
}

void tsr_net_eval_counts(const tsr_net *net, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    memset(out, 0, sizeof *out);
    for (int64_t r = 0; r < n_tok(net); r++) {
        float m = mb->mask[r];
        if (m == 0.0f)
            continue;
        out->correct += m * net->row_correct[r];
        out->loss_sum += m * net->row_loss[r];
        out->tokens += m;
    }
}

static tsr_status net_train_microbatch(void *self, const tsr_microbatch *mb, float loss_scale,
                                       double *loss)
{
    tsr_net *net = self;
    tsr_net_set_loss_weights(net, mb, loss_scale);
    TRY(tsr_net_forward_chunk(net, mb, 0, true, loss));
    return backward_stack(net, mb, 0);
}

static tsr_status net_eval_microbatch(void *self, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    tsr_net *net = self;
    if (net->d.pp > 1)
        return tsr_net_pipeline_eval(net, mb, out);
    TRY(tsr_net_forward_chunk(net, mb, 0, false, NULL));
    tsr_net_eval_counts(net, mb, out);
    return TSR_OK;
}

/* Under sequence parallelism each rank saw only its rows in the SP-partial
 * parameters (norms, learned positions): their gradients are summed over
 * tp once per iteration. A tied embedding lives on the first and the last
 * stage: both copies take the sum of their gradients, so they stay equal
 * (Megatron's embedding group). */
static tsr_status net_finish_grads(void *self)
{
    tsr_net *net = self;
    for (size_t i = 0; net->d.sp && i < net->param_count_entries; i++) {
        const tsr_net_param *p = &net->table[i];
        if (p->local && !p->frozen && (p->flags & TSR_PARAM_SP_PARTIAL))
            TRY(tsr_tp_allreduce_sum(TSR_HERE, &net->tp, net->grads + p->offset,
                                     p->local_rows * p->local_cols));
    }
    if (net->d.pp > 1 && net->tied) {
        for (size_t i = 0; i < net->param_count_entries; i++) {
            const tsr_net_param *p = &net->table[i];
            if (!p->local || p->frozen || (i != net->embedding_entry && !p->tied_copy))
                continue;
            tsr_comm *group = tsr_grid_comm(net->tp.grid, TSR_GROUP_EMBEDDING);
            TRY(tsr_comm_allreduce(net->grads + p->offset, net->grads + p->offset,
                                   (size_t)(p->local_rows * p->local_cols), TSR_COMM_FP32,
                                   TSR_COMM_SUM, group, NULL));
        }
    }
    return TSR_OK;
}

static tsr_status net_train_iteration(void *self, const tsr_microbatch_source *src, int count,
                                      float loss_scale, double *loss_sum)
{
    return tsr_net_pipeline_iteration(self, src, count, loss_scale, loss_sum);
}

tsr_status tsr_net_logits(tsr_net *net, const int32_t *tokens, float *logits, int64_t *count)
{
    tsr_microbatch mb = {.tokens = tokens};
    return tsr_net_logits_of(net, &mb, logits, count);
}

tsr_status tsr_net_logits_of(tsr_net *net, const tsr_microbatch *mb, float *logits,
                             int64_t *count)
{
    TRY(check_tokens(net, mb->tokens, NULL));
    tsr_net_select_slot(net, 0);
    TRY(forward_stack(net, mb, 0, false, false));
    int u = tsr_net_unit_head(net);
    const tsr_module_node *head = &net->nodes[net->units[u].root];
    net->exec.unit_saved = unit_block(net, &net->units[u]);
    float *buffers[TSR_MODULE_MAX_BUFFERS];
    tsr_module_run run;
    make_run(net, head, buffers, &run);
    return head->spec->kind->logits(&run, norm_output(net), logits, count);
}

tsr_model tsr_net_as_model(tsr_net *net)
{
    tsr_model m;
    memset(&m, 0, sizeof m);
    m.self = net;
    m.params = net->params;
    m.grads = net->grads;
    m.fp32_view = net->weights16;
    m.param_count = net->numel;
    m.expert_count = net->expert_numel;
    m.spans = net->spans;
    m.span_count = net->span_count;
    m.tensors = net->tensors;
    m.tensor_count = net->tensor_count;
    m.frozen = net->frozen;
    m.frozen_count = net->frozen_numel;
    m.largest_operand = tsr_net_largest_buffer_floats(net);
    m.train_microbatch = net_train_microbatch;
    m.eval_microbatch = net_eval_microbatch;
    m.finish_grads = net_finish_grads;
    m.take_aux_loss = net->cfg.num_experts > 0 ? net_take_aux_loss : NULL;
    m.train_iteration = net->d.pp > 1 ? net_train_iteration : NULL;
    return m;
}
