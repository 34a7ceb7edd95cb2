/*
 * comm_trace_report.c - what the rings say: a rank's state, where the
 * members of a group diverge, and the text of a ring report. Pure
 * functions of images already read (comm_trace.h).
 */
#include "comm_trace.h"
#include "watchdog.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t tsr_trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double seconds_since(int64_t then_ns, int64_t now_ns)
{
    return then_ns <= 0 || now_ns < then_ns ? 0.0 : (double)(now_ns - then_ns) * 1e-9;
}

const tsr_trace_entry *tsr_trace_find(const tsr_trace_image *image, uint64_t serial)
{
    if (serial == 0)
        return NULL;
    const tsr_trace_entry *e = &image->ring[(serial - 1) % TSR_TRACE_RING];
    return e->serial == serial && e->serial_end == serial ? e : NULL;
}

const tsr_trace_entry *tsr_trace_find_seq(const tsr_trace_image *image, const char *group,
                                          uint64_t seq)
{
    const tsr_trace_entry *best = NULL;
    for (int i = 0; i < TSR_TRACE_RING; i++) {
        const tsr_trace_entry *e = &image->ring[i];
        if (e->serial == 0 || e->serial != e->serial_end || e->seq == 0 ||
            strncmp(e->group, group, TSR_TRACE_GROUP_LEN) != 0)
            continue;
        if ((seq == 0 || e->seq == seq) && (best == NULL || e->serial > best->serial))
            best = e;
    }
    return best;
}

static const char *kind_name(int32_t kind)
{
    return tsr_comm_kind_name((tsr_comm_kind)kind);
}

/* "allreduce #5 on tp (4096 B, from f (a.c:10))"; send/recv name the peer. */
static void append_call(char *buf, size_t len, size_t *pos, const tsr_trace_entry *e)
{
    if (e->seq > 0)
        tsr_watchdog_append(buf, len, pos, "%s #%llu on %s", kind_name(e->kind),
                            (unsigned long long)e->seq, e->group);
    else
        tsr_watchdog_append(buf, len, pos, "%s with group rank %d on %s", kind_name(e->kind),
                            e->peer, e->group);
    tsr_watchdog_append(buf, len, pos, " (%llu B, from %s (%s))", (unsigned long long)e->bytes,
                        e->func, e->where);
}

/* The state line; without times (times = false) it is the key by which
 * ranks in the same state are listed together. */
static void describe(const tsr_trace_image *image, int64_t now_ns, bool times, char *buf,
                     size_t len)
{
    size_t pos = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    const tsr_trace_header *h = &image->header;
    if (h->waiting != 0) {
        const tsr_trace_entry *e = tsr_trace_find(image, h->waiting);
        if (times)
            tsr_watchdog_append(buf, len, &pos, "waiting for %.1f s ",
                                seconds_since(h->wait_start_ns, now_ns));
        else
            tsr_watchdog_append(buf, len, &pos, "waiting ");
        /* a blocking call waits where it was made */
        if (e == NULL || strncmp(e->where, h->wait_where, TSR_TRACE_WHERE_LEN) != 0)
            tsr_watchdog_append(buf, len, &pos, "in %s (%s) ", h->wait_func, h->wait_where);
        tsr_watchdog_append(buf, len, &pos, "for ");
        if (e != NULL)
            append_call(buf, len, &pos, e);
        else
            tsr_watchdog_append(buf, len, &pos, "call %llu (no longer in its ring)",
                                (unsigned long long)h->waiting);
        return;
    }
    if (h->serial == 0) {
        tsr_watchdog_append(
            buf, len, &pos,
            "in computation since %.1f s, with no communication call since the world "
            "communicator was made",
            times ? seconds_since(h->idle_since_ns, now_ns) : 0.0);
        return;
    }
    tsr_watchdog_append(buf, len, &pos, "in computation since %.1f s; its last call: ",
                        times ? seconds_since(h->idle_since_ns, now_ns) : 0.0);
    const tsr_trace_entry *e = tsr_trace_find(image, h->serial);
    if (e != NULL)
        append_call(buf, len, &pos, e);
    else
        tsr_watchdog_append(buf, len, &pos, "number %llu", (unsigned long long)h->serial);
}

void tsr_trace_describe_state(const tsr_trace_image *image, int64_t now_ns, char *buf, size_t len)
{
    describe(image, now_ns, true, buf, len);
}

/* Bytes are compared too, but not for all-to-allv, whose counts differ
 * between ranks by design. */
static bool same_call(const tsr_trace_entry *a, const tsr_trace_entry *b)
{
    return a->kind == b->kind && (a->bytes == b->bytes || a->kind == TSR_COMM_KIND_ALLTOALLV) &&
           strncmp(a->func, b->func, TSR_TRACE_FUNC_LEN) == 0 &&
           strncmp(a->where, b->where, TSR_TRACE_WHERE_LEN) == 0;
}

/* The first collective number on group at which the members' calls
 * differ, looking from the oldest number every ring still holds up to
 * last; 0 if none. */
static uint64_t first_difference(const char *group, uint64_t last, int size,
                                 const tsr_trace_image *members, const bool *answered)
{
    /* the oldest number any answering ring holds bounds the scan below:
     * a number older than every ring is unknowable */
    uint64_t oldest = UINT64_MAX;
    for (int r = 0; r < size; r++) {
        if (!answered[r])
            continue;
        for (int i = 0; i < TSR_TRACE_RING; i++) {
            const tsr_trace_entry *e = &members[r].ring[i];
            if (e->serial != 0 && e->serial == e->serial_end && e->seq != 0 &&
                strncmp(e->group, group, TSR_TRACE_GROUP_LEN) == 0 && e->seq < oldest)
                oldest = e->seq;
        }
    }
    if (oldest == UINT64_MAX)
        return 0;
    for (uint64_t k = oldest; k <= last; k++) {
        const tsr_trace_entry *ref = NULL;
        for (int r = 0; r < size; r++) {
            if (!answered[r])
                continue;
            const tsr_trace_entry *e = tsr_trace_find_seq(&members[r], group, k);
            if (e == NULL)
                continue;
            if (ref == NULL)
                ref = e;
            else if (!same_call(ref, e))
                return k;
        }
    }
    return 0;
}

/* "world ranks 0, 2: allreduce (64 B) from f (a.c:1); world rank 1: ..."
 * for collective k: members grouped by the call they made. */
static void append_calls_at(char *buf, size_t len, size_t *pos, const char *group, uint64_t k,
                            int size, const int *world_ranks, const tsr_trace_image *members,
                            const bool *answered)
{
    bool listed[size > 0 ? size : 1];
    for (int r = 0; r < size; r++)
        listed[r] = false;
    int clusters = 0;
    for (int r = 0; r < size; r++) {
        const tsr_trace_entry *ref = answered[r] ? tsr_trace_find_seq(&members[r], group, k) : NULL;
        if (listed[r] || ref == NULL)
            continue;
        int n = 0;
        for (int q = r; q < size; q++) {
            const tsr_trace_entry *e =
                answered[q] && !listed[q] ? tsr_trace_find_seq(&members[q], group, k) : NULL;
            n += e != NULL && same_call(ref, e);
        }
        tsr_watchdog_append(buf, len, pos, "%sworld rank%s ", clusters++ ? "; " : "",
                            n > 1 ? "s" : "");
        int shown = 0;
        for (int q = r; q < size; q++) {
            const tsr_trace_entry *e =
                answered[q] && !listed[q] ? tsr_trace_find_seq(&members[q], group, k) : NULL;
            if (e == NULL || !same_call(ref, e))
                continue;
            listed[q] = true;
            if (shown < 8)
                tsr_watchdog_append(buf, len, pos, "%s%d", shown ? ", " : "", world_ranks[q]);
            else if (shown == 8)
                tsr_watchdog_append(buf, len, pos, ", ...");
            shown++;
        }
        tsr_watchdog_append(buf, len, pos, ": %s (%llu B) from %s (%s)", kind_name(ref->kind),
                            (unsigned long long)ref->bytes, ref->func, ref->where);
    }
}

/* Why a member behind is not at the collective, from what it waits for. */
static const char *behind_hint(const tsr_trace_image *image, const char *group)
{
    const tsr_trace_header *h = &image->header;
    const tsr_trace_entry *w = tsr_trace_find(image, h->waiting);
    if (w != NULL && w->seq == 0)
        return " - waiting in a send/recv: what holds it up may be its peer in the pipeline";
    if (w != NULL && strncmp(w->group, group, TSR_TRACE_GROUP_LEN) != 0)
        return " - waiting in another call, so this one was skipped, or the calls are made in "
               "another order";
    if (h->waiting == 0)
        return " - slow or stuck outside communication";
    return "";
}

#define STATE_LEN 512

void tsr_trace_diagnose(char *buf, size_t len, const char *group, uint64_t my_seq, int size,
                        const int *world_ranks, const tsr_trace_image *members,
                        const bool *answered, const uint64_t *seqs, int64_t now_ns)
{
    size_t pos = strnlen(buf, len);
    /* members in the same state are listed together, so that a thousand
     * ranks waiting for one read as one clause */
    char *states = malloc((size_t)(size > 0 ? size : 1) * STATE_LEN);
    bool *listed = calloc((size_t)(size > 0 ? size : 1), sizeof *listed);
    if (states == NULL || listed == NULL) {
        free(states);
        free(listed);
        return;
    }
    for (int r = 0; r < size; r++) {
        states[(size_t)r * STATE_LEN] = '\0';
        if (answered[r] && seqs[r] < my_seq) /* keys without times: ranks seconds apart */
            describe(&members[r], now_ns, false, states + (size_t)r * STATE_LEN, STATE_LEN);
    }
    int clauses = 0;
    for (int r = 0; r < size; r++) {
        if (!answered[r] || seqs[r] >= my_seq || listed[r])
            continue;
        const char *state = states + (size_t)r * STATE_LEN;
        char first_state[STATE_LEN]; /* the first rank's, with its times */
        describe(&members[r], now_ns, true, first_state, sizeof first_state);
        int n = 0;
        for (int q = r; q < size; q++)
            n += answered[q] && !listed[q] && seqs[q] == seqs[r] &&
                 strcmp(states + (size_t)q * STATE_LEN, state) == 0;
        tsr_watchdog_append(buf, len, &pos, "%sworld rank%s ",
                            clauses++ ? ". " : "Where the ranks diverge: ", n > 1 ? "s" : "");
        int shown = 0;
        for (int q = r; q < size; q++) {
            if (!answered[q] || listed[q] || seqs[q] != seqs[r] ||
                strcmp(states + (size_t)q * STATE_LEN, state) != 0)
                continue;
            listed[q] = true;
            if (shown < 8)
                tsr_watchdog_append(buf, len, &pos, "%s%d", shown ? ", " : "", world_ranks[q]);
            else if (shown == 8)
                tsr_watchdog_append(buf, len, &pos, ", ... (%d in all)", n);
            shown++;
        }
        tsr_watchdog_append(buf, len, &pos,
                            " %s behind on %s: made %llu collectives there, not #%llu; %s%s",
                            n > 1 ? "are" : "is", group, (unsigned long long)seqs[r],
                            (unsigned long long)my_seq, first_state, behind_hint(&members[r], group));
    }
    free(states);
    free(listed);
    uint64_t k = first_difference(group, my_seq, size, members, answered);
    if (k != 0) {
        tsr_watchdog_append(buf, len, &pos,
                            "%sThe calls first differ at %s #%llu: ", clauses > 0 ? ". " : "",
                            group, (unsigned long long)k);
        append_calls_at(buf, len, &pos, group, k, size, world_ranks, members, answered);
    }
}

void tsr_trace_print_report(FILE *out, int world_rank, const tsr_trace_image *image,
                            int writer_rank, int64_t now_ns)
{
    char state[512];
    tsr_trace_describe_state(image, now_ns, state, sizeof state);
    fprintf(out, "# tessera: recent communication calls of world rank %d\n", world_rank);
    if (writer_rank != world_rank)
        fprintf(out,
                "# written by world rank %d from a remote read: rank %d could not write it "
                "(stuck outside communication, stopped, or dead)\n",
                writer_rank, world_rank);
    fprintf(out, "# now: %s\n", state);
    fprintf(out,
            "# %llu calls made; below, the last of them (at most %d), oldest first; times in "
            "seconds before now, duration -1: not complete\n",
            (unsigned long long)image->header.serial, TSR_TRACE_RING);
    fprintf(out, "%-8s %-12s %-8s %-14s %-6s %12s %10s %10s  %s\n", "call", "group", "seq", "op",
            "peer", "bytes", "started", "duration", "site");
    uint64_t newest = image->header.serial;
    uint64_t oldest = newest > TSR_TRACE_RING ? newest - TSR_TRACE_RING + 1 : 1;
    for (uint64_t s = oldest; s <= newest && newest > 0; s++) {
        const tsr_trace_entry *e = tsr_trace_find(image, s);
        if (e == NULL)
            continue;
        double duration = e->end_ns > 0 ? seconds_since(e->start_ns, e->end_ns) : -1.0;
        fprintf(out, "%-8llu %-12s %-8llu %-14s %-6d %12llu %10.3f %10.3f  %s (%s)\n",
                (unsigned long long)e->serial, e->group, (unsigned long long)e->seq,
                kind_name(e->kind), e->peer, (unsigned long long)e->bytes,
                seconds_since(e->start_ns, now_ns), duration, e->func, e->where);
    }
}
