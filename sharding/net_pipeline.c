/*
 * net_pipeline.c - runs this rank's pipeline stages through a schedule.
 *
 * The schedule (sharding/pipeline_schedule.h) is built once at creation:
 * an ordered list of FORWARD / BACKWARD of (micro batch, chunk) and
 * EXCHANGE actions. Micro batch m keeps its activations in slot
 * m mod slots, where slots is the schedule's peak number of micro batches
 * in flight: those in flight for a chunk are consecutive, so slots never
 * collide. Received activations land in the slot's chunk input, received
 * gradients in its d_recv; sends read the chunk output and d_send, which
 * stay untouched until their micro batch's next action. Every exchange is
 * posted as one batch of non-blocking sends and receives and waited for
 * as one, like Megatron's batched p2p; shapes come from the config, so no
 * size is exchanged. Activations travel as the residual stream is kept
 * (16 bits under --bf16 / --fp16, as Megatron sends them). Each rank's
 * idle time in exchanges is measured: that is the pipeline bubble as this
 * rank saw it.
 */
#include <string.h>

#include "collectives/comm.h"
#include "data/dataset.h"
#include "net_internal.h"
#include "tessera/log.h"
#include "tessera/timer.h"

static int slot_of(const tsr_net *g, int microbatch)
{
    return microbatch % g->d.slots;
}

static size_t activation_floats(const tsr_net *g)
{
    return (size_t)(g->d.micro_batch * g->d.l_seq * g->d.hidden);
}

/* The buffer a point-to-point operation reads or fills. */
static float *p2p_buffer(tsr_net *g, const tsr_pp_p2p *op)
{
    tsr_net_select_slot(g, slot_of(g, op->microbatch));
    chunk_io *io = &g->io[(size_t)slot_of(g, op->microbatch) * (size_t)g->d.chunks +
                          (size_t)op->chunk];
    switch (op->kind) {
    case TSR_PP_SEND_ACTIVATION:
        return tsr_net_chunk_output(g, op->chunk);
    case TSR_PP_RECV_ACTIVATION:
        return io->x_in;
    case TSR_PP_SEND_GRAD:
        return io->d_send;
    case TSR_PP_RECV_GRAD:
        return io->d_recv;
    }
    return NULL;
}

static tsr_status exchange(tsr_net *g, const tsr_pp_action *action)
{
    tsr_comm_p2p ops[TSR_PP_MAX_EXCHANGE_OPS];
    for (int i = 0; i < action->num_ops; i++) {
        const tsr_pp_p2p *op = &action->ops[i];
        ops[i].is_send = op->kind == TSR_PP_SEND_ACTIVATION || op->kind == TSR_PP_SEND_GRAD;
        ops[i].buf = p2p_buffer(g, op);
        ops[i].count = activation_floats(g);
        ops[i].dtype = op->kind == TSR_PP_SEND_ACTIVATION || op->kind == TSR_PP_RECV_ACTIVATION
                           ? tsr_net_stream_dtype(g)
                           : TSR_COMM_FP32;
        ops[i].peer = op->peer;
    }
    tsr_comm_request *request = NULL;
    uint64_t t0 = tsr_time_ns();
    TRY(tsr_comm_batch_p2p(ops, (size_t)action->num_ops, tsr_grid_comm(g->tp.grid, TSR_GROUP_PP),
                           &request));
    tsr_status st = tsr_comm_wait(&request);
    g->pipeline_wait_ns += tsr_time_ns() - t0;
    return st;
}

/* Every stage reads every micro batch of the iteration up front: the first
 * stage needs the tokens, the last the targets and mask, and all of them
 * the sample indices that key dropout and the attention rows. */
static tsr_status load_microbatches(tsr_net *g, const tsr_microbatch_source *src, int count)
{
    size_t rows = (size_t)(g->d.micro_batch * g->d.seq);
    for (int m = 0; m < count; m++) {
        int64_t first = src->first_sample + (int64_t)m * src->micro_batch_size;
        int32_t *tokens = g->mb_tokens + (size_t)m * (rows + 1);
        int32_t *targets = g->mb_targets + (size_t)m * rows;
        float *mask = g->mb_mask + (size_t)m * rows;
        TRY(tsr_dataset_batch(src->dataset, TSR_SPLIT_TRAIN, first, src->micro_batch_size,
                              tokens, targets, mask));
        int32_t *doc = g->mb_doc_start, *lo = g->mb_prefix_lo, *hi = g->mb_prefix_hi;
        doc = doc != NULL ? doc + (size_t)m * rows : NULL;
        lo = lo != NULL ? lo + (size_t)m * rows : NULL;
        hi = hi != NULL ? hi + (size_t)m * rows : NULL;
        TRY(tsr_dataset_attention_rows(src->dataset, TSR_SPLIT_TRAIN, first,
                                       src->micro_batch_size, tokens, mask, doc, lo, hi));
        tsr_microbatch mb = {tokens, targets, mask, first, src->iteration, NULL, NULL,
                             doc,    lo,      hi};
        g->mbs[m] = mb;
    }
    return TSR_OK;
}

tsr_status tsr_net_pipeline_iteration(tsr_net *g, const tsr_microbatch_source *src, int count,
                                      float loss_scale, double *loss_sum)
{
    if (count != g->d.microbatches)
        return tsr_error_set(TSR_ERR_INTERNAL,
                             "pipeline schedule built for %d micro batches, asked for %d",
                             g->d.microbatches, count);
    TRY(load_microbatches(g, src, count));
    g->loss_scale = loss_scale; /* every stage's own loss terms take it */
    const tsr_microbatch *mbs = g->mbs;
    double local = 0.0;
    uint64_t t0 = tsr_time_ns();
    for (size_t i = 0; i < g->action_count; i++) {
        const tsr_pp_action *action = &g->actions[i];
        if (action->kind == TSR_PP_EXCHANGE) {
            TRY(exchange(g, action));
            continue;
        }
        const tsr_microbatch *mb = &mbs[action->microbatch];
        tsr_net_select_slot(g, slot_of(g, action->microbatch));
        if (action->kind == TSR_PP_FORWARD) {
            double loss = 0.0;
            if (action->chunk == g->d.chunks - 1 && g->d.has_head)
                tsr_net_set_loss_weights(g, mb, loss_scale);
            TRY(tsr_net_forward_chunk(g, mb, action->chunk, true, &loss));
            local += loss;
        } else {
            TRY(tsr_net_backward_chunk(g, mb, action->chunk));
        }
    }
    g->pipeline_step_ns += tsr_time_ns() - t0;
    /* only the last stage computed losses: share them along the pipeline */
    TRY(tsr_comm_allreduce(&local, &local, 1, TSR_COMM_FP64, TSR_COMM_SUM,
                           tsr_grid_comm(g->tp.grid, TSR_GROUP_PP), NULL));
    *loss_sum = local;
    return TSR_OK;
}

tsr_status tsr_net_pipeline_bubble(tsr_net *g, double *fractions)
{
    double mine = g->pipeline_step_ns > 0
                      ? (double)g->pipeline_wait_ns / (double)g->pipeline_step_ns
                      : 0.0;
    if (g->d.pp <= 1) {
        fractions[0] = mine;
        return TSR_OK;
    }
    tsr_comm *pp = tsr_grid_comm(g->tp.grid, TSR_GROUP_PP);
    return tsr_comm_allgather(&mine, fractions, 1, TSR_COMM_FP64, pp, NULL);
}

/* Evaluation runs one micro batch through the virtual stages in order:
 * chunk c of ranks 0..p-1, then chunk c+1, passing the activation on with
 * blocking sends and receives; the last stage's counts are then shared. */
tsr_status tsr_net_pipeline_eval(tsr_net *g, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    tsr_comm *pp = tsr_grid_comm(g->tp.grid, TSR_GROUP_PP);
    int p = g->d.pp, r = g->d.pp_rank;
    memset(out, 0, sizeof *out);
    tsr_net_select_slot(g, 0);
    for (int c = 0; c < g->d.chunks; c++) {
        bool first_piece = r == 0 && c == 0;
        bool last_piece = r == p - 1 && c == g->d.chunks - 1;
        if (!first_piece)
            TRY(tsr_comm_recv(g->io[c].x_in, activation_floats(g), tsr_net_stream_dtype(g),
                              (r + p - 1) % p, pp, NULL));
        TRY(tsr_net_forward_chunk(g, mb, c, false, NULL));
        if (last_piece)
            TRY((tsr_net_eval_counts(g, mb, out), TSR_OK));
        else
            TRY(tsr_comm_send(tsr_net_chunk_output(g, c), activation_floats(g),
                              tsr_net_stream_dtype(g), (r + 1) % p, pp, NULL));
    }
    double counts[3] = {out->loss_sum, out->tokens, out->correct};
    TRY(tsr_comm_allreduce(counts, counts, 3, TSR_COMM_FP64, TSR_COMM_SUM, pp, NULL));
    out->loss_sum = counts[0];
    out->tokens = counts[1];
    out->correct = counts[2];
    return TSR_OK;
}
