/*
 * pipeline_sim.c - the event simulation of all pipeline ranks (rules in
 * pipeline_sim.h).
 *
 * Two phases. Matching, before any time passes: every point-to-point
 * operation gets a global id, operations are bucketed by directed
 * channel (a sender, receiver pair, both kinds of tensor together), and
 * the k-th send of a channel is paired with its k-th receive (their kinds
 * and names must agree). Execution: each rank advances through its list
 * until it reaches an exchange whose partners have not all been posted;
 * the sweep repeats until every rank is done or a whole
 * sweep moves nobody (deadlock). Post times are each rank's own clock, and
 * an exchange's completion depends only on post times, so the result is
 * that of the dataflow, whatever order ranks are swept in.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_sim.h"

enum {
    ST_FWD = 1,
    ST_BWD = 2,
    ST_ACT_IN = 4,
    ST_GRAD_IN = 8,
    ST_ACT_OUT = 16,
    ST_GRAD_OUT = 32
};

typedef struct sim_op {
    int rank;
    size_t action;
    tsr_pp_p2p op;
    size_t partner;
    int64_t post; /* -1: not posted yet */
} sim_op;

typedef struct sim {
    int p, m, v;
    const tsr_pp_action *const *actions;
    const size_t *counts;
    sim_op *ops;
    size_t num_ops;
    size_t *first_op; /* per rank, per action: global id of its first op */
    size_t *first_op_of_rank;
    unsigned char *state; /* (rank, microbatch, chunk) -> ST_ bits */
} sim;

static bool is_send(tsr_pp_p2p_kind k)
{
    return k == TSR_PP_SEND_ACTIVATION || k == TSR_PP_SEND_GRAD;
}

static bool is_activation(tsr_pp_p2p_kind k)
{
    return k == TSR_PP_SEND_ACTIVATION || k == TSR_PP_RECV_ACTIVATION;
}

static const char *op_name(tsr_pp_p2p_kind k)
{
    switch (k) {
    case TSR_PP_SEND_ACTIVATION: return "send activation";
    case TSR_PP_RECV_ACTIVATION: return "receive activation";
    case TSR_PP_SEND_GRAD: return "send gradient";
    case TSR_PP_RECV_GRAD: return "receive gradient";
    }
    return "unknown operation";
}

static unsigned char *state_of(sim *s, int rank, int microbatch, int chunk)
{
    return &s->state[((size_t)rank * (size_t)s->m + (size_t)microbatch) * (size_t)s->v +
                     (size_t)chunk];
}

/* The virtual stage a tensor travels to: activations forward, gradients
 * backward. Returns false if there is none. */
static bool peer_stage(const sim *s, int rank, const tsr_pp_p2p *op, int *peer_rank,
                       int *peer_chunk)
{
    int64_t stage = (int64_t)op->chunk * s->p + rank;
    bool forward = op->kind == TSR_PP_SEND_ACTIVATION || op->kind == TSR_PP_RECV_GRAD;
    int64_t other = forward ? stage + 1 : stage - 1;
    if (other < 0 || other >= (int64_t)s->p * s->v)
        return false;
    *peer_rank = (int)(other % s->p);
    *peer_chunk = (int)(other / s->p);
    return true;
}

static tsr_status fail_at(const sim *s, int rank, size_t action, const char *what)
{
    char text[256];
    tsr_pp_action_format(&s->actions[rank][action], text, sizeof text);
    return tsr_error_set(TSR_ERR_INVALID_ARG, "pipeline simulation: rank %d, action %zu (%s): %s",
                         rank, action, text, what);
}

/* Names, ranges and neighbours of every action, before anything runs. */
static tsr_status check_structure(sim *s)
{
    char why[160];
    for (int r = 0; r < s->p; r++) {
        for (size_t i = 0; i < s->counts[r]; i++) {
            const tsr_pp_action *a = &s->actions[r][i];
            if (a->kind == TSR_PP_FORWARD || a->kind == TSR_PP_BACKWARD) {
                if (a->microbatch < 0 || a->microbatch >= s->m || a->chunk < 0 ||
                    a->chunk >= s->v)
                    return fail_at(s, r, i, "microbatch or chunk out of range");
                continue;
            }
            if (a->kind != TSR_PP_EXCHANGE)
                return fail_at(s, r, i, "unknown action kind");
            if (a->num_ops < 1 || a->num_ops > TSR_PP_MAX_EXCHANGE_OPS)
                return fail_at(s, r, i, "an exchange holds 1 to 4 operations");
            for (int k = 0; k < a->num_ops; k++) {
                const tsr_pp_p2p *op = &a->ops[k];
                if ((int)op->kind < TSR_PP_SEND_ACTIVATION || op->kind > TSR_PP_RECV_GRAD)
                    return fail_at(s, r, i, "unknown operation kind");
                if (op->microbatch < 0 || op->microbatch >= s->m || op->chunk < 0 ||
                    op->chunk >= s->v)
                    return fail_at(s, r, i, "operation's microbatch or chunk out of range");
                int pr, pc;
                if (!peer_stage(s, r, op, &pr, &pc)) {
                    snprintf(why, sizeof why, "%s for chunk %d: no stage on that side",
                             op_name(op->kind), op->chunk);
                    return fail_at(s, r, i, why);
                }
                if (op->peer != pr) {
                    snprintf(why, sizeof why, "%s names peer %d, but that stage is on rank %d",
                             op_name(op->kind), op->peer, pr);
                    return fail_at(s, r, i, why);
                }
            }
        }
    }
    return TSR_OK;
}

/* Pairs the k-th send of each channel with its k-th receive. A channel
 * is an ordered (sender, receiver) pair carrying activations and
 * gradients alike, because tsr_comm_batch_p2p() matches a pair's messages
 * in call order whatever they hold (with p = 2, next and previous stage
 * are the same rank). Its sends all sit on the sender and its receives on
 * the receiver, so walking the global ids in order visits each side in
 * list order, and inside an exchange in operation order. */
static size_t channel_of(const sim *s, const sim_op *o)
{
    bool send = is_send(o->op.kind);
    size_t from = (size_t)(send ? o->rank : o->op.peer);
    size_t to = (size_t)(send ? o->op.peer : o->rank);
    return from * (size_t)s->p + to;
}

static tsr_status match_channels(sim *s)
{
    size_t channels = (size_t)s->p * (size_t)s->p;
    size_t *num_sends = calloc(channels, sizeof *num_sends);
    size_t *num_recvs = calloc(channels, sizeof *num_recvs);
    size_t *send_at = calloc(channels, sizeof *send_at); /* cursor into order[] */
    size_t *recv_at = calloc(channels, sizeof *recv_at);
    size_t *order = malloc((s->num_ops + 1) * sizeof *order); /* sends, by channel */
    tsr_status st = TSR_OK;
    if (num_sends == NULL || num_recvs == NULL || send_at == NULL || recv_at == NULL ||
        order == NULL) {
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "pipeline simulation: out of memory");
        goto done;
    }
    for (size_t i = 0; i < s->num_ops; i++) {
        size_t c = channel_of(s, &s->ops[i]);
        if (is_send(s->ops[i].op.kind))
            num_sends[c]++;
        else
            num_recvs[c]++;
    }
    size_t start = 0;
    for (size_t c = 0; c < channels; c++) {
        if (num_sends[c] != num_recvs[c]) {
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "pipeline simulation: from rank %zu to rank %zu: %zu sends but %zu "
                               "receives",
                               c / (size_t)s->p, c % (size_t)s->p, num_sends[c], num_recvs[c]);
            goto done;
        }
        send_at[c] = recv_at[c] = start;
        start += num_sends[c];
    }
    for (size_t i = 0; i < s->num_ops; i++)
        if (is_send(s->ops[i].op.kind))
            order[send_at[channel_of(s, &s->ops[i])]++] = i;
    for (size_t i = 0; i < s->num_ops; i++) {
        sim_op *rv = &s->ops[i];
        if (is_send(rv->op.kind))
            continue;
        sim_op *sd = &s->ops[order[recv_at[channel_of(s, rv)]++]];
        int want_rank = -1, want_chunk = -1; /* check_structure() made sure both exist */
        peer_stage(s, sd->rank, &sd->op, &want_rank, &want_chunk);
        bool same_kind = is_activation(sd->op.kind) == is_activation(rv->op.kind);
        if (!same_kind || sd->op.microbatch != rv->op.microbatch || want_chunk != rv->op.chunk) {
            char why[200];
            snprintf(why, sizeof why,
                     "in channel order this receive meets rank %d's %s of microbatch %d chunk %d "
                     "(action %zu), which is meant for chunk %d",
                     sd->rank, op_name(sd->op.kind), sd->op.microbatch, sd->op.chunk, sd->action,
                     want_chunk);
            st = fail_at(s, rv->rank, rv->action, why);
            goto done;
        }
        rv->partner = (size_t)(sd - s->ops);
        sd->partner = i;
    }
done:
    free(num_sends);
    free(num_recvs);
    free(send_at);
    free(recv_at);
    free(order);
    return st;
}

static tsr_status run_compute(sim *s, int r, size_t i, int *in_flight)
{
    const tsr_pp_action *a = &s->actions[r][i];
    unsigned char *st = state_of(s, r, a->microbatch, a->chunk);
    int64_t stage = (int64_t)a->chunk * s->p + r;
    if (a->kind == TSR_PP_FORWARD) {
        if (*st & ST_FWD)
            return fail_at(s, r, i, "forwarded twice");
        if (stage > 0 && !(*st & ST_ACT_IN))
            return fail_at(s, r, i, "forward before its activation was received");
        *st |= ST_FWD;
        (*in_flight)++;
    } else {
        if (!(*st & ST_FWD))
            return fail_at(s, r, i, "backward before its forward");
        if (*st & ST_BWD)
            return fail_at(s, r, i, "backwarded twice");
        if (stage < (int64_t)s->p * s->v - 1 && !(*st & ST_GRAD_IN))
            return fail_at(s, r, i, "backward before its gradient was received");
        *st |= ST_BWD;
        (*in_flight)--;
    }
    return TSR_OK;
}

/* Posting: a send needs the tensor it sends. */
static tsr_status post_exchange(sim *s, int r, size_t i, int64_t now)
{
    const tsr_pp_action *a = &s->actions[r][i];
    for (int k = 0; k < a->num_ops; k++) {
        const tsr_pp_p2p *op = &a->ops[k];
        unsigned char st = *state_of(s, r, op->microbatch, op->chunk);
        if (op->kind == TSR_PP_SEND_ACTIVATION && !(st & ST_FWD))
            return fail_at(s, r, i, "activation sent before its forward");
        if (op->kind == TSR_PP_SEND_GRAD && !(st & ST_BWD))
            return fail_at(s, r, i, "gradient sent before its backward");
        s->ops[s->first_op[s->first_op_of_rank[r] + i] + (size_t)k].post = now;
    }
    return TSR_OK;
}

/* Completes an exchange if every partner has posted; *done_at is when. */
static bool exchange_ready(const sim *s, int r, size_t i, tsr_pp_send_mode mode,
                           int64_t *done_at)
{
    const tsr_pp_action *a = &s->actions[r][i];
    size_t base = s->first_op[s->first_op_of_rank[r] + i];
    int64_t t = s->ops[base].post;
    for (int k = 0; k < a->num_ops; k++) {
        const sim_op *o = &s->ops[base + (size_t)k];
        int64_t partner_post = s->ops[o->partner].post;
        if (is_send(o->op.kind) && mode == TSR_PP_SEND_EAGER)
            continue;
        if (partner_post < 0)
            return false;
        if (partner_post > t)
            t = partner_post;
    }
    *done_at = t;
    return true;
}

static tsr_status finish_exchange(sim *s, int r, size_t i)
{
    const tsr_pp_action *a = &s->actions[r][i];
    static const unsigned char bit[] = {ST_ACT_OUT, ST_ACT_IN, ST_GRAD_OUT, ST_GRAD_IN};
    for (int k = 0; k < a->num_ops; k++) {
        const tsr_pp_p2p *op = &a->ops[k];
        unsigned char *st = state_of(s, r, op->microbatch, op->chunk);
        if (*st & bit[op->kind]) {
            char why[96];
            snprintf(why, sizeof why, "%s of microbatch %d chunk %d happens twice",
                     op_name(op->kind), op->microbatch, op->chunk);
            return fail_at(s, r, i, why);
        }
        *st |= bit[op->kind];
    }
    return TSR_OK;
}

static tsr_status report_deadlock(const sim *s, const size_t *pos)
{
    char text[1600];
    size_t used = 0;
    for (int r = 0; r < s->p && used < sizeof text; r++) {
        if (pos[r] >= s->counts[r])
            continue;
        char act[256];
        tsr_pp_action_format(&s->actions[r][pos[r]], act, sizeof act);
        int n = snprintf(text + used, sizeof text - used, "%s rank %d at action %zu %s",
                         used > 0 ? ";" : "", r, pos[r], act);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "pipeline simulation: deadlock, no rank can move:%s", text);
}

static tsr_status execute(sim *s, const tsr_pp_sim_options *opt, tsr_pp_sim_rank_stats *stats,
                          int64_t *makespan, int64_t *const *start_times)
{
    size_t *pos = calloc((size_t)s->p, sizeof *pos);
    int64_t *clock = calloc((size_t)s->p, sizeof *clock);
    int *in_flight = calloc((size_t)s->p, sizeof *in_flight);
    bool *posted = calloc((size_t)s->p, sizeof *posted);
    tsr_status st = TSR_OK;
    if (pos == NULL || clock == NULL || in_flight == NULL || posted == NULL) {
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "pipeline simulation: out of memory");
        goto done;
    }
    memset(stats, 0, (size_t)s->p * sizeof *stats);
    for (bool moved = true; moved;) {
        moved = false;
        for (int r = 0; r < s->p; r++) {
            while (pos[r] < s->counts[r]) {
                size_t i = pos[r];
                const tsr_pp_action *a = &s->actions[r][i];
                if (a->kind != TSR_PP_EXCHANGE) {
                    if (start_times != NULL)
                        start_times[r][i] = clock[r];
                    st = run_compute(s, r, i, &in_flight[r]);
                    if (st != TSR_OK)
                        goto done;
                    int64_t cost =
                        a->kind == TSR_PP_FORWARD ? opt->forward_cost : opt->backward_cost;
                    clock[r] += cost;
                    stats[r].busy += cost;
                    if (in_flight[r] > stats[r].peak_in_flight)
                        stats[r].peak_in_flight = in_flight[r];
                } else {
                    if (!posted[r]) {
                        if (start_times != NULL)
                            start_times[r][i] = clock[r];
                        st = post_exchange(s, r, i, clock[r]);
                        if (st != TSR_OK)
                            goto done;
                        posted[r] = true;
                        moved = true;
                    }
                    int64_t done_at;
                    if (!exchange_ready(s, r, i, opt->send_mode, &done_at))
                        break;
                    st = finish_exchange(s, r, i);
                    if (st != TSR_OK)
                        goto done;
                    stats[r].wait += done_at - clock[r];
                    clock[r] = done_at;
                    posted[r] = false;
                }
                pos[r]++;
                moved = true;
            }
        }
    }
    int64_t end = 0;
    for (int r = 0; r < s->p; r++) {
        if (pos[r] < s->counts[r]) {
            st = report_deadlock(s, pos);
            goto done;
        }
        stats[r].finish = clock[r];
        if (clock[r] > end)
            end = clock[r];
    }
    for (int r = 0; r < s->p; r++) {
        stats[r].idle = end - stats[r].busy;
        for (int mb = 0; mb < s->m; mb++) {
            for (int c = 0; c < s->v; c++) {
                unsigned char bits = *state_of(s, r, mb, c);
                if ((bits & (ST_FWD | ST_BWD)) != (ST_FWD | ST_BWD)) {
                    st = tsr_error_set(TSR_ERR_INVALID_ARG,
                                       "pipeline simulation: rank %d never %s microbatch %d "
                                       "chunk %d",
                                       r, (bits & ST_FWD) ? "backwarded" : "forwarded", mb, c);
                    goto done;
                }
            }
        }
    }
    *makespan = end;
done:
    free(pos);
    free(clock);
    free(in_flight);
    free(posted);
    return st;
}

tsr_status tsr_pp_sim_run(int pp_size, int num_microbatches, int num_chunks,
                          const tsr_pp_action *const *actions, const size_t *counts,
                          const tsr_pp_sim_options *options, tsr_pp_sim_rank_stats *stats,
                          int64_t *makespan, int64_t *const *start_times)
{
    if (pp_size < 1 || num_microbatches < 1 || num_chunks < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline simulation: pipeline size %d, %d microbatches and %d "
                             "chunks must all be at least 1",
                             pp_size, num_microbatches, num_chunks);
    if (actions == NULL || counts == NULL || options == NULL || stats == NULL ||
        makespan == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "pipeline simulation: a required argument is NULL");
    if (options->forward_cost < 0 || options->backward_cost < 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline simulation: costs must not be negative");
    sim s = {.p = pp_size, .m = num_microbatches, .v = num_chunks, .actions = actions,
             .counts = counts};
    size_t total_actions = 0;
    for (int r = 0; r < pp_size; r++) {
        if (actions[r] == NULL && counts[r] > 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "pipeline simulation: rank %d has %zu actions but no list", r,
                                 counts[r]);
        total_actions += counts[r];
    }
    tsr_status st = check_structure(&s);
    if (st != TSR_OK)
        return st;
    for (int r = 0; r < pp_size; r++)
        for (size_t i = 0; i < counts[r]; i++)
            if (actions[r][i].kind == TSR_PP_EXCHANGE)
                s.num_ops += (size_t)actions[r][i].num_ops;

    s.ops = calloc(s.num_ops + 1, sizeof *s.ops);
    s.first_op = calloc(total_actions + 1, sizeof *s.first_op);
    s.first_op_of_rank = calloc((size_t)pp_size, sizeof *s.first_op_of_rank);
    s.state = calloc((size_t)pp_size * (size_t)num_microbatches * (size_t)num_chunks, 1);
    if (s.ops == NULL || s.first_op == NULL || s.first_op_of_rank == NULL || s.state == NULL) {
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "pipeline simulation: out of memory");
        goto done;
    }
    size_t id = 0, at = 0;
    for (int r = 0; r < pp_size; r++) {
        s.first_op_of_rank[r] = at;
        for (size_t i = 0; i < counts[r]; i++, at++) {
            s.first_op[at] = id;
            const tsr_pp_action *a = &actions[r][i];
            if (a->kind != TSR_PP_EXCHANGE)
                continue;
            for (int k = 0; k < a->num_ops; k++, id++) {
                s.ops[id] = (sim_op){.rank = r, .action = i, .op = a->ops[k], .post = -1};
            }
        }
    }
    st = match_channels(&s);
    if (st == TSR_OK)
        st = execute(&s, options, stats, makespan, start_times);
done:
    free(s.ops);
    free(s.first_op);
    free(s.first_op_of_rank);
    free(s.state);
    return st;
}

tsr_status tsr_pp_sim_schedule(const tsr_pp_schedule_spec *spec,
                               const tsr_pp_sim_options *options, tsr_pp_sim_rank_stats *stats,
                               int64_t *makespan)
{
    if (spec == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "pipeline simulation: no schedule spec");
    tsr_pp_schedule_spec rs = *spec;
    rs.pp_rank = 0;
    tsr_status st = tsr_pp_schedule_validate(&rs);
    if (st != TSR_OK)
        return st;
    int p = spec->pp_size;
    tsr_pp_action **lists = calloc((size_t)p, sizeof *lists);
    size_t *counts = calloc((size_t)p, sizeof *counts);
    if (lists == NULL || counts == NULL) {
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "pipeline simulation: out of memory");
        goto done;
    }
    for (int r = 0; r < p; r++) {
        rs.pp_rank = r;
        size_t n;
        st = tsr_pp_schedule_count(&rs, &n);
        if (st != TSR_OK)
            goto done;
        lists[r] = malloc((n + 1) * sizeof *lists[r]);
        if (lists[r] == NULL) {
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "pipeline simulation: out of memory");
            goto done;
        }
        st = tsr_pp_schedule_build(&rs, lists[r], n, &counts[r]);
        if (st != TSR_OK)
            goto done;
    }
    st = tsr_pp_sim_run(p, spec->num_microbatches, spec->num_chunks,
                        (const tsr_pp_action *const *)lists, counts, options, stats, makespan,
                        NULL);
done:
    if (lists != NULL)
        for (int r = 0; r < p; r++)
            free(lists[r]);
    free(lists);
    free(counts);
    return st;
}
