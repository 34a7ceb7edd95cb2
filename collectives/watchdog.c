/*
 * watchdog.c - the arrival window and the diagnosis of a stuck collective
 * (design in watchdog.h and docs/collectives.md).
 *
 * Why RMA: the waiting rank must learn how far its peers got without their
 * cooperation, since a peer may be stuck elsewhere or dead. One-sided reads
 * of a word each peer updates with a plain store cost nothing on the fast
 * path (no message per collective), and within a node Open MPI's osc/sm
 * serves them from shared memory even when the peer is dead; across nodes
 * osc/rdma or osc/ucx serve them by RDMA. The read is bounded by a deadline
 * so that a transport needing the target's help cannot hang the diagnosis.
 */
#include "watchdog.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "comm.h"
#include "tessera/log.h"
#include "tessera/timer.h"

int tsr_watchdog_win_allocate(MPI_Comm comm, size_t bytes, int disp_unit, void *base,
                              MPI_Win *win)
{
    MPI_Info info;
    MPI_Info_create(&info);
    /* no accumulates: lets osc components skip their atomicity machinery */
    MPI_Info_set(info, "accumulate_ops", "same_op");
    /* An MPI without a one-sided component for this transport (Open MPI
     * over TCP without MPI_THREAD_MULTIPLE has none) refuses the window
     * on every rank alike: an error to return, not to end the job */
    MPI_Errhandler previous;
    MPI_Comm_get_errhandler(comm, &previous);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int rc = MPI_Win_allocate((MPI_Aint)bytes, disp_unit, info, comm, base, win);
    MPI_Comm_set_errhandler(comm, previous);
    MPI_Errhandler_free(&previous);
    MPI_Info_free(&info);
    return rc;
}

tsr_status tsr_watchdog_window_create(MPI_Comm comm, tsr_watchdog_window *w)
{
    memset(w, 0, sizeof *w);
    /* without a window the watchdog still bounds every wait and names the
     * group, only without the list of who arrived */
    int rc = tsr_watchdog_win_allocate(comm, sizeof(uint64_t), (int)sizeof(uint64_t), &w->word,
                                       &w->win);
    if (rc != MPI_SUCCESS) {
        tsr_log_once(TSR_LOG_WARN,
                     "this MPI offers no one-sided window here (MPI_Win_allocate failed); a "
                     "stuck collective will still end the job, but its message cannot list "
                     "which ranks arrived");
        w->word = NULL;
        return TSR_OK;
    }
    *w->word = 0;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, w->win);
    w->open = true;
    MPI_Win_sync(w->win);
    return TSR_OK;
}

void tsr_watchdog_window_free(tsr_watchdog_window *w)
{
    if (!w->open)
        return;
    MPI_Win_unlock_all(w->win);
    MPI_Win_free(&w->win);
    w->open = false;
    w->word = NULL;
}

void tsr_watchdog_publish(tsr_watchdog_window *w, uint64_t seq, int kind)
{
    if (!w->open)
        return;
    __atomic_store_n(w->word, tsr_watchdog_word(seq, kind), __ATOMIC_RELEASE);
}

/* Polls reqs[0..n) until each completes or the deadline passes; done[i]
 * says which did. Requests still pending are left: the job is about to be
 * aborted. */
static void poll_until(MPI_Request *reqs, int n, double deadline_s, bool *done)
{
    double end = tsr_time_s() + deadline_s;
    int pending = n;
    while (pending > 0 && tsr_time_s() < end) {
        pending = 0;
        for (int i = 0; i < n; i++) {
            if (done[i] || reqs[i] == MPI_REQUEST_NULL)
                continue;
            int flag = 0;
            MPI_Test(&reqs[i], &flag, MPI_STATUS_IGNORE);
            if (flag)
                done[i] = true;
            else
                pending++;
        }
        if (pending > 0)
            sched_yield();
    }
}

void tsr_watchdog_rget_all(MPI_Win win, const int *targets, int n, size_t disp, void *dest,
                           size_t bytes_each, double deadline_s, bool *answered)
{
    MPI_Request reqs[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) {
        answered[i] = false;
        reqs[i] = MPI_REQUEST_NULL;
        void *into = (char *)dest + (size_t)i * bytes_each;
        int target = targets != NULL ? targets[i] : i;
        if (MPI_Rget(into, (int)bytes_each, MPI_BYTE, target, (MPI_Aint)disp, (int)bytes_each,
                     MPI_BYTE, win, &reqs[i]) != MPI_SUCCESS)
            reqs[i] = MPI_REQUEST_NULL;
    }
    MPI_Win_sync(win);
    poll_until(reqs, n, deadline_s, answered);
}

void tsr_watchdog_rput_all(MPI_Win win, const int *targets, int n, size_t disp, const void *src,
                           size_t bytes, double deadline_s)
{
    MPI_Request reqs[n > 0 ? n : 1];
    bool done[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) {
        done[i] = false;
        reqs[i] = MPI_REQUEST_NULL;
        if (MPI_Rput(src, (int)bytes, MPI_BYTE, targets[i], (MPI_Aint)disp, (int)bytes, MPI_BYTE,
                     win, &reqs[i]) != MPI_SUCCESS)
            reqs[i] = MPI_REQUEST_NULL;
    }
    poll_until(reqs, n, deadline_s, done);
}

void tsr_watchdog_read(tsr_watchdog_window *w, int size, double deadline_s, uint64_t *words,
                       bool *answered)
{
    for (int r = 0; r < size; r++) {
        words[r] = 0;
        answered[r] = false;
    }
    if (w->open)
        tsr_watchdog_rget_all(w->win, NULL, size, 0, words, sizeof *words, deadline_s, answered);
}

tsr_watchdog_peer tsr_watchdog_classify(uint64_t my_seq, int my_kind, uint64_t word, bool answered)
{
    tsr_watchdog_peer p = {TSR_PEER_NO_ANSWER, 0, -1};
    if (!answered)
        return p;
    p.seq = word >> 8;
    p.kind = p.seq == 0 ? -1 : (int)(word & 0xff);
    if (p.seq < my_seq)
        p.state = TSR_PEER_NEVER_ARRIVED;
    else if (p.seq == my_seq && p.kind != my_kind)
        p.state = TSR_PEER_OTHER_COLLECTIVE;
    else
        p.state = TSR_PEER_ARRIVED;
    return p;
}

void tsr_watchdog_append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    if (*pos >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos += (size_t)n;
    if (*pos >= len)
        *pos = len;
}

static const char *kind_or_none(int kind)
{
    return kind < 0 ? "none" : tsr_comm_kind_name((tsr_comm_kind)kind);
}

static void append_state_list(char *buf, size_t len, size_t *pos, tsr_watchdog_state state,
                              const char *title, int size, const int *world_ranks,
                              const tsr_watchdog_peer *peers)
{
    int n = 0;
    for (int r = 0; r < size; r++)
        n += peers[r].state == state;
    if (n == 0)
        return;
    tsr_watchdog_append(buf, len, pos, "; %s: world rank%s ", title, n > 1 ? "s" : "");
    int k = 0;
    for (int r = 0; r < size; r++) {
        if (peers[r].state != state)
            continue;
        tsr_watchdog_append(buf, len, pos, "%s%d", k++ ? ", " : "", world_ranks[r]);
        if (state == TSR_PEER_NEVER_ARRIVED || state == TSR_PEER_OTHER_COLLECTIVE)
            tsr_watchdog_append(buf, len, pos,
                                " (group rank %d, %llu collectives started, last: %s)", r,
                                (unsigned long long)peers[r].seq, kind_or_none(peers[r].kind));
        else if (state == TSR_PEER_NO_ANSWER)
            tsr_watchdog_append(buf, len, pos, " (group rank %d)", r);
    }
}

void tsr_watchdog_format(char *buf, size_t len, const char *op, const char *group, int size,
                         int my_rank, const int *world_ranks, uint64_t my_seq,
                         const tsr_watchdog_peer *peers, double timeout_s)
{
    size_t pos = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    tsr_watchdog_append(
        buf, len, &pos,
        "watchdog: %s #%llu on group %s (%d ranks) did not complete within %.1f s on world "
        "rank %d",
        op, (unsigned long long)my_seq, group, size, timeout_s, world_ranks[my_rank]);
    append_state_list(buf, len, &pos, TSR_PEER_NEVER_ARRIVED, "never arrived", size, world_ranks,
                      peers);
    append_state_list(buf, len, &pos, TSR_PEER_NO_ANSWER,
                      "did not answer (dead, or stuck outside MPI)", size, world_ranks, peers);
    append_state_list(buf, len, &pos, TSR_PEER_OTHER_COLLECTIVE, "at a different collective", size,
                      world_ranks, peers);
    append_state_list(buf, len, &pos, TSR_PEER_ARRIVED, "arrived", size, world_ranks, peers);
    tsr_watchdog_append(
        buf, len, &pos,
        ". Ending the job; raise --distributed-timeout-minutes if this step is just slow");
}

void tsr_watchdog_format_p2p(char *buf, size_t len, const char *op, const char *group, int peer,
                             const int *world_ranks, const tsr_watchdog_peer *peer_state,
                             double timeout_s)
{
    size_t pos = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    tsr_watchdog_append(
        buf, len, &pos,
        "watchdog: %s with world rank %d (group rank %d) on group %s did not complete "
        "within %.1f s; ",
        op, world_ranks[peer], peer, group, timeout_s);
    if (peer_state->state == TSR_PEER_NO_ANSWER)
        tsr_watchdog_append(
            buf, len, &pos,
            "world rank %d never arrived: it did not answer (dead, or stuck outside MPI)",
            world_ranks[peer]);
    else
        tsr_watchdog_append(buf, len, &pos,
                            "world rank %d never arrived at the matching call (it has started %llu "
                            "collectives on %s, last: %s)",
                            world_ranks[peer], (unsigned long long)peer_state->seq, group,
                            kind_or_none(peer_state->kind));
    tsr_watchdog_append(buf, len, &pos, ". Ending the job");
}
