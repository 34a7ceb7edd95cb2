/*
 * pipeline_schedule.c - the schedule generators (rules in
 * pipeline_schedule.h).
 *
 * Each generator walks Megatron-Core's loop (warm-up forwards, steady
 * one-forward-one-backward, cool-down backwards) and emits the compute
 * and the exchanges where Megatron calls forward_step / backward_step and
 * its p2p_communication functions. Where Megatron leaves a received tensor
 * in a per-chunk queue for "the next forward (backward) of that chunk",
 * the generator names that microbatch explicitly, from the closed-form
 * iteration -> (microbatch, chunk) mapping; the simulation then proves
 * that sender and receiver agree on every name.
 *
 * Emission goes through an emitter that counts always and writes only
 * while there is room, so counting and building are the same code path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pipeline_schedule.h"

typedef struct emitter {
    tsr_pp_action *out; /* NULL: count only */
    size_t capacity;
    size_t count;
} emitter;

typedef struct gen {
    int p, r, m, v;
    int prev, next; /* ring neighbours */
    emitter *e;
} gen;

const char *tsr_pp_schedule_kind_name(tsr_pp_schedule_kind kind)
{
    static const char *const names[TSR_PP_SCHEDULE_COUNT] = {"gpipe", "1f1b", "interleaved"};
    if ((int)kind < 0 || kind >= TSR_PP_SCHEDULE_COUNT)
        return "unknown";
    return names[kind];
}

tsr_status tsr_pp_schedule_validate(const tsr_pp_schedule_spec *s)
{
    if (s == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "pipeline schedule: no spec given");
    if ((int)s->kind < 0 || s->kind >= TSR_PP_SCHEDULE_COUNT)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule: unknown kind %d; use gpipe, 1f1b or interleaved",
                             (int)s->kind);
    const char *name = tsr_pp_schedule_kind_name(s->kind);
    if (s->pp_size < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: pipeline size %d must be at least 1", name,
                             s->pp_size);
    if (s->pp_rank < 0 || s->pp_rank >= s->pp_size)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: pipeline rank %d is outside 0..%d", name,
                             s->pp_rank, s->pp_size - 1);
    if (s->num_microbatches < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: %d microbatches; a step needs at least 1 "
                             "(global batch / (micro batch x data-parallel size))",
                             name, s->num_microbatches);
    if (s->num_chunks < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: %d model chunks per rank; use 1 without "
                             "virtual stages",
                             name, s->num_chunks);
    /* Every action list is indexed by int microbatch x chunk products. */
    if ((int64_t)s->num_microbatches * s->num_chunks > INT32_MAX / 8)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: %d microbatches x %d chunks is too many", name,
                             s->num_microbatches, s->num_chunks);
    if (s->kind == TSR_PP_SCHEDULE_1F1B && s->num_chunks != 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule 1f1b: %d model chunks per rank; 1F1B over virtual "
                             "stages is the interleaved schedule",
                             s->num_chunks);
    if (s->num_chunks > 1 && s->pp_size < 2)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: %d virtual stages need a pipeline of at least "
                             "2 ranks (--num-layers-per-virtual-pipeline-stage needs "
                             "--pipeline-model-parallel-size >= 2)",
                             name, s->num_chunks);
    if ((s->kind == TSR_PP_SCHEDULE_INTERLEAVED || s->num_chunks > 1) &&
        s->num_microbatches % s->pp_size != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: %d microbatches is not a multiple of the "
                             "pipeline size %d, which the interleaved order needs (as in "
                             "Megatron-LM); choose --global-batch-size so that the microbatch "
                             "count is a multiple of %d, or drop "
                             "--num-layers-per-virtual-pipeline-stage",
                             name, s->num_microbatches, s->pp_size, s->pp_size);
    return TSR_OK;
}

static void emit(gen *g, const tsr_pp_action *a)
{
    emitter *e = g->e;
    if (e->out != NULL && e->count < e->capacity)
        e->out[e->count] = *a;
    e->count++;
}

static void emit_compute(gen *g, tsr_pp_action_kind kind, int microbatch, int chunk)
{
    tsr_pp_action a = {.kind = kind, .microbatch = microbatch, .chunk = chunk, .num_ops = 0};
    emit(g, &a);
}

static tsr_pp_action exchange_begin(void)
{
    tsr_pp_action a = {.kind = TSR_PP_EXCHANGE, .microbatch = -1, .chunk = -1, .num_ops = 0};
    return a;
}

static void exchange_add(tsr_pp_action *x, tsr_pp_p2p_kind kind, int peer, int microbatch,
                         int chunk)
{
    tsr_pp_p2p op = {.kind = kind, .peer = peer, .microbatch = microbatch, .chunk = chunk};
    x->ops[x->num_ops++] = op;
}

/* An exchange with nothing to do is not an action (Megatron's p2p calls
 * return at once when every tensor is None). */
static void exchange_end(gen *g, const tsr_pp_action *x)
{
    if (x->num_ops > 0)
        emit(g, x);
}

static bool first_stage(const gen *g, int chunk) { return g->r == 0 && chunk == 0; }
static bool last_stage(const gen *g, int chunk) { return g->r == g->p - 1 && chunk == g->v - 1; }

/* --- Megatron's forward_backward_pipelining_without_interleaving ------- */

static void gen_1f1b(gen *g)
{
    bool first = g->r == 0, last = g->r == g->p - 1;
    int warmup = g->p - g->r - 1 < g->m ? g->p - g->r - 1 : g->m;
    int remaining = g->m - warmup;
    int fwd = 0, bwd = 0;
    tsr_pp_action x;

    for (int i = 0; i < warmup; i++, fwd++) {
        x = exchange_begin(); /* recv_forward */
        if (!first)
            exchange_add(&x, TSR_PP_RECV_ACTIVATION, g->prev, fwd, 0);
        exchange_end(g, &x);
        emit_compute(g, TSR_PP_FORWARD, fwd, 0);
        x = exchange_begin(); /* send_forward */
        if (!last)
            exchange_add(&x, TSR_PP_SEND_ACTIVATION, g->next, fwd, 0);
        exchange_end(g, &x);
    }
    if (remaining > 0) {
        x = exchange_begin(); /* recv_forward of the first steady forward */
        if (!first)
            exchange_add(&x, TSR_PP_RECV_ACTIVATION, g->prev, fwd, 0);
        exchange_end(g, &x);
    }
    for (int i = 0; i < remaining; i++, fwd++, bwd++) {
        emit_compute(g, TSR_PP_FORWARD, fwd, 0);
        x = exchange_begin(); /* send_forward_recv_backward */
        if (!last) {
            exchange_add(&x, TSR_PP_SEND_ACTIVATION, g->next, fwd, 0);
            exchange_add(&x, TSR_PP_RECV_GRAD, g->next, bwd, 0);
        }
        exchange_end(g, &x);
        emit_compute(g, TSR_PP_BACKWARD, bwd, 0);
        x = exchange_begin(); /* send_backward[_recv_forward] */
        if (!first) {
            exchange_add(&x, TSR_PP_SEND_GRAD, g->prev, bwd, 0);
            if (i != remaining - 1)
                exchange_add(&x, TSR_PP_RECV_ACTIVATION, g->prev, fwd + 1, 0);
        }
        exchange_end(g, &x);
    }
    for (int i = 0; i < warmup; i++, bwd++) {
        x = exchange_begin(); /* recv_backward */
        if (!last)
            exchange_add(&x, TSR_PP_RECV_GRAD, g->next, bwd, 0);
        exchange_end(g, &x);
        emit_compute(g, TSR_PP_BACKWARD, bwd, 0);
        x = exchange_begin(); /* send_backward */
        if (!first)
            exchange_add(&x, TSR_PP_SEND_GRAD, g->prev, bwd, 0);
        exchange_end(g, &x);
    }
}

/* --- Megatron's forward_backward_pipelining_with_interleaving ---------- */

/* Python's %, which Megatron's get_model_chunk_id relies on for the
 * negative iteration numbers of the steady state's look-back. */
static int64_t py_mod(int64_t a, int64_t n)
{
    int64_t r = a % n;
    return r < 0 ? r + n : r;
}

/* Iterations run in groups of p*v; inside a group, p consecutive
 * iterations share a chunk (forward: chunk 0 first; backward: last). */
static int fwd_chunk(const gen *g, int64_t k)
{
    return (int)(py_mod(k, (int64_t)g->p * g->v) / g->p);
}

static int bwd_chunk(const gen *g, int64_t k) { return g->v - 1 - fwd_chunk(g, k); }

static int microbatch_of(const gen *g, int64_t k)
{
    int64_t pv = (int64_t)g->p * g->v;
    return (int)((k / pv) * g->p + k % g->p);
}

/* The first iteration after `after` whose forward chunk is c. */
static int64_t next_with_fwd_chunk(const gen *g, int64_t after, int c)
{
    int64_t pv = (int64_t)g->p * g->v, j = after + 1;
    int64_t group = j / pv, at = (j % pv) / g->p;
    if (at == c)
        return j;
    if (at < c)
        return group * pv + (int64_t)c * g->p;
    return (group + 1) * pv + (int64_t)c * g->p;
}

/* A received activation waits for the next forward of its chunk after
 * forward iteration f; a received gradient for the next backward of its
 * chunk after backward iteration b. */
static void add_recv_activation(const gen *g, tsr_pp_action *x, int64_t f, int c)
{
    exchange_add(x, TSR_PP_RECV_ACTIVATION, g->prev, microbatch_of(g, next_with_fwd_chunk(g, f, c)),
                 c);
}

static void add_recv_grad(const gen *g, tsr_pp_action *x, int64_t b, int c)
{
    int64_t j = next_with_fwd_chunk(g, b, g->v - 1 - c);
    exchange_add(x, TSR_PP_RECV_GRAD, g->next, microbatch_of(g, j), c);
}

static void add_send_activation(const gen *g, tsr_pp_action *x, int64_t f)
{
    int c = fwd_chunk(g, f);
    if (!last_stage(g, c))
        exchange_add(x, TSR_PP_SEND_ACTIVATION, g->next, microbatch_of(g, f), c);
}

static void add_send_grad(const gen *g, tsr_pp_action *x, int64_t b)
{
    int c = bwd_chunk(g, b);
    if (!first_stage(g, c))
        exchange_add(x, TSR_PP_SEND_GRAD, g->prev, microbatch_of(g, b), c);
}

/* all_warmup: every forward before any backward - Megatron's path when
 * m == p, and GPipe. */
static void gen_interleaved(gen *g, bool all_warmup)
{
    int p = g->p, r = g->r, v = g->v;
    int64_t total = (int64_t)g->m * v;
    int64_t warmup = total;
    if (!all_warmup) {
        warmup = 2 * (int64_t)(p - r - 1) + (int64_t)(v - 1) * p;
        if (warmup > total)
            warmup = total;
    }
    int64_t remaining = total - warmup;
    tsr_pp_action x;

    x = exchange_begin(); /* recv_forward for chunk 0 */
    if (r != 0)
        add_recv_activation(g, &x, -1, 0);
    exchange_end(g, &x);

    for (int64_t k = 0; k < warmup; k++) {
        emit_compute(g, TSR_PP_FORWARD, microbatch_of(g, k), fwd_chunk(g, k));
        int next_c = fwd_chunk(g, k + 1);
        bool recv_prev = !(r == 0 && next_c == 0) && k != total - 1;
        x = exchange_begin();
        add_send_activation(g, &x, k);
        if (recv_prev)
            add_recv_activation(g, &x, k, next_c);
        /* The last warm-up exchange also fetches the first gradient
         * (send_forward_backward_recv_forward_backward). */
        if (k == warmup - 1 && !all_warmup && r != p - 1)
            add_recv_grad(g, &x, -1, v - 1);
        exchange_end(g, &x);
    }

    for (int64_t k = 0; k < remaining; k++) {
        int64_t fk = k + warmup, bk = k;
        emit_compute(g, TSR_PP_FORWARD, microbatch_of(g, fk), fwd_chunk(g, fk));
        emit_compute(g, TSR_PP_BACKWARD, microbatch_of(g, bk), bwd_chunk(g, bk));

        /* The ring: rank 0 receives what rank p-1 sends in the same
         * iteration, which is p-1 iterations behind it (and the mirror
         * for gradients on rank p-1), exactly as Megatron computes it. */
        bool recv_prev = true;
        int next_fc;
        if (r == 0) {
            next_fc = fwd_chunk(g, fk - (p - 1));
            if (next_fc == v - 1)
                recv_prev = false;
            next_fc += 1;
        } else {
            next_fc = fwd_chunk(g, fk + 1);
        }
        bool recv_next = true;
        int next_bc;
        if (r == p - 1) {
            next_bc = bwd_chunk(g, bk - (p - 1));
            if (next_bc == 0)
                recv_next = false;
            next_bc -= 1;
        } else {
            next_bc = bwd_chunk(g, bk + 1);
        }
        if (k == remaining - 1)
            recv_prev = false;

        /* send_forward_backward_recv_forward_backward. The order of the
         * operations matters when p = 2 (next == previous): both ranks list
         * activation before gradient, so call-order matching pairs them. */
        x = exchange_begin();
        add_send_activation(g, &x, fk);
        add_send_grad(g, &x, bk);
        if (recv_prev)
            add_recv_activation(g, &x, fk, next_fc);
        if (recv_next)
            add_recv_grad(g, &x, bk, next_bc);
        exchange_end(g, &x);
    }

    if (all_warmup) {
        x = exchange_begin(); /* recv_backward for the last chunk */
        if (r != p - 1)
            add_recv_grad(g, &x, -1, v - 1);
        exchange_end(g, &x);
    }
    for (int64_t k = remaining; k < total; k++) {
        emit_compute(g, TSR_PP_BACKWARD, microbatch_of(g, k), bwd_chunk(g, k));
        int next_bc = bwd_chunk(g, k + 1);
        bool recv_next = !(r == p - 1 && next_bc == v - 1) && k != total - 1;
        x = exchange_begin(); /* send_backward_recv_backward */
        add_send_grad(g, &x, k);
        if (recv_next)
            add_recv_grad(g, &x, k, next_bc);
        exchange_end(g, &x);
    }
}

static tsr_status generate(const tsr_pp_schedule_spec *s, emitter *e)
{
    tsr_status st = tsr_pp_schedule_validate(s);
    if (st != TSR_OK)
        return st;
    gen g = {.p = s->pp_size,
             .r = s->pp_rank,
             .m = s->num_microbatches,
             .v = s->num_chunks,
             .prev = (s->pp_rank + s->pp_size - 1) % s->pp_size,
             .next = (s->pp_rank + 1) % s->pp_size,
             .e = e};
    switch (s->kind) {
    case TSR_PP_SCHEDULE_GPIPE:
        gen_interleaved(&g, true);
        break;
    case TSR_PP_SCHEDULE_1F1B:
        gen_1f1b(&g);
        break;
    case TSR_PP_SCHEDULE_INTERLEAVED:
        gen_interleaved(&g, g.m == g.p);
        break;
    default:
        return tsr_error_set(TSR_ERR_INTERNAL, "pipeline schedule: kind %d has no generator",
                             (int)s->kind);
    }
    return TSR_OK;
}

tsr_status tsr_pp_schedule_count(const tsr_pp_schedule_spec *spec, size_t *count)
{
    if (count == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "pipeline schedule: count is NULL");
    emitter e = {.out = NULL, .capacity = 0, .count = 0};
    tsr_status st = generate(spec, &e);
    *count = st == TSR_OK ? e.count : 0;
    return st;
}

tsr_status tsr_pp_schedule_build(const tsr_pp_schedule_spec *spec, tsr_pp_action *actions,
                                 size_t capacity, size_t *count)
{
    if (count == NULL || (actions == NULL && capacity > 0))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule: actions or count is NULL");
    emitter e = {.out = actions, .capacity = capacity, .count = 0};
    tsr_status st = generate(spec, &e);
    if (st != TSR_OK) {
        *count = 0;
        return st;
    }
    *count = e.count;
    if (e.count > capacity)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "pipeline schedule %s: rank %d needs %zu actions but the array "
                             "holds %zu; size it with tsr_pp_schedule_count()",
                             tsr_pp_schedule_kind_name(spec->kind), spec->pp_rank, e.count,
                             capacity);
    return TSR_OK;
}

tsr_status tsr_pp_schedule_max_in_flight(const tsr_pp_schedule_spec *s, int *max_in_flight)
{
    if (max_in_flight == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "pipeline schedule: max_in_flight is NULL");
    tsr_status st = tsr_pp_schedule_validate(s);
    if (st != TSR_OK)
        return st;
    int p = s->pp_size, r = s->pp_rank, m = s->num_microbatches, v = s->num_chunks;
    int total = m * v, n = total;
    if (s->kind == TSR_PP_SCHEDULE_1F1B) {
        n = p - r < m ? p - r : m;
    } else if (s->kind == TSR_PP_SCHEDULE_INTERLEAVED && m != p) {
        /* warm-up forwards, plus the steady state's forward that runs
         * before its backward */
        int64_t warm = 2 * (int64_t)(p - r - 1) + (int64_t)(v - 1) * p + 1;
        n = warm < total ? (int)warm : total;
    }
    *max_in_flight = n;
    return TSR_OK;
}

double tsr_pp_schedule_bubble_theory(const tsr_pp_schedule_spec *spec)
{
    tsr_pp_schedule_spec s = *spec;
    s.pp_rank = 0;
    if (tsr_pp_schedule_validate(&s) != TSR_OK)
        return -1.0;
    double p = s.pp_size, m = s.num_microbatches, v = s.num_chunks;
    return (p - 1) / (v * m + p - 1);
}

int tsr_pp_action_format(const tsr_pp_action *a, char *buf, size_t size)
{
    static const char *const op_names[] = {"send_act", "recv_act", "send_grad", "recv_grad"};
    if (a->kind == TSR_PP_FORWARD || a->kind == TSR_PP_BACKWARD)
        return snprintf(buf, size, "%c %d.%d", a->kind == TSR_PP_FORWARD ? 'F' : 'B',
                        a->microbatch, a->chunk);
    int want = snprintf(buf, size, "{");
    for (int i = 0; i < a->num_ops && i < TSR_PP_MAX_EXCHANGE_OPS; i++) {
        const tsr_pp_p2p *op = &a->ops[i];
        size_t used = (size_t)want < size ? (size_t)want : size;
        bool send = op->kind == TSR_PP_SEND_ACTIVATION || op->kind == TSR_PP_SEND_GRAD;
        const char *name = (int)op->kind >= 0 && op->kind <= TSR_PP_RECV_GRAD ? op_names[op->kind]
                                                                                : "?";
        want += snprintf(buf + used, size - used, "%s%s %d.%d %c%d", i > 0 ? ", " : "", name,
                         op->microbatch, op->chunk, send ? '>' : '<', op->peer);
    }
    size_t used = (size_t)want < size ? (size_t)want : size;
    want += snprintf(buf + used, size - used, "}");
    return want;
}
