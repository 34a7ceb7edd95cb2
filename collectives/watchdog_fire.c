/*
 * watchdog_fire.c - what a rank does when one of its waits outlives the
 * timeout: say who never arrived (the arrival windows, watchdog.h), then
 * where the ranks diverge and what the ranks behind are doing (their rings
 * of recent calls, comm_trace.h), have every rank that can still act write
 * its ring beside the log, write the group's others from what was read,
 * and end the job.
 *
 * Nothing read by RMA on this path is freed: a read that missed its
 * deadline may still land (a transport that needs the target's help
 * delivers it when the target re-enters MPI), and the process is about to
 * be aborted anyway.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"
#include "tessera/log.h"
#include "tessera/timer.h"

/* Groups larger than this are diagnosed from the arrival windows only:
 * reading every member's ring (12 KiB each) would take too long. */
#define FIRE_MAX_RINGS 1024

/* The message must reach the user even with logging turned off, and whole:
 * the log's line holds 4 KiB, a diagnosis of a large group more. */
static void say(const char *msg)
{
    if (tsr_log_threshold() <= TSR_LOG_ERROR && strlen(msg) < 4000)
        tsr_log(TSR_LOG_ERROR, "%s", msg);
    else
        fprintf(stderr, "[tessera] %s\n", msg);
    fflush(stderr);
    fflush(stdout);
}

static const char *no_answer = "did not answer (dead, or stuck outside MPI)";

/* A send/recv batch, from the rings of the whole world (worlds[w]: world
 * rank w's image, seen[w] whether it answered): what each peer is doing,
 * and which ranks are not waiting in communication at all - in a pipeline
 * the rank that holds everyone up is often not a direct peer. */
static void format_p2p(char *msg, size_t len, const tsr_comm_request *req, const tsr_comm *comm,
                       double timeout, const tsr_trace_image *worlds, const bool *seen,
                       int world_size, int64_t now)
{
    int one = req->peer;
    const int *peers = req->n_peers > 0 ? req->peers : &one;
    int n = req->n_peers > 0 ? req->n_peers : 1, me = comm->world_ranks[comm->rank];
    size_t pos = 0;
    msg[0] = '\0';
    tsr_watchdog_append(msg, len, &pos,
                        "watchdog: send/recv on group %s did not complete within %.1f s on world "
                        "rank %d; its peers:",
                        comm->name, timeout, me);
    char state[512];
    for (int i = 0; i < n; i++) {
        int g = peers[i], w = g >= 0 && g < comm->size ? comm->world_ranks[g] : -1;
        if (w < 0)
            continue;
        if (seen[w])
            tsr_trace_describe_state(&worlds[w], now, state, sizeof state);
        tsr_watchdog_append(msg, len, &pos, "%s world rank %d (group rank %d) is %s", i ? ";" : "",
                            w, g, seen[w] ? state : no_answer);
    }
    int idle = 0;
    for (int w = 0; w < world_size; w++) {
        if (w == me || (seen[w] && worlds[w].header.waiting != 0))
            continue;
        if (seen[w])
            tsr_trace_describe_state(&worlds[w], now, state, sizeof state);
        if (idle < 8)
            tsr_watchdog_append(msg, len, &pos, "%s world rank %d: %s",
                                idle ? ";" : ". Not waiting in communication:", w,
                                seen[w] ? state : no_answer);
        else if (idle == 8)
            tsr_watchdog_append(msg, len, &pos, "; and more");
        idle++;
    }
    if (idle == 0)
        tsr_watchdog_append(msg, len, &pos,
                            ". Every other rank waits in communication: the calls do not match "
                            "(the rings show them)");
    tsr_watchdog_append(msg, len, &pos, ". Ending the job");
}

/* Asks every rank for its ring, writes this rank's, waits up to wait_s for
 * the group's members to write theirs and writes, from what was read, the
 * rings of the members that did not. Says where the files are. */
static void write_rings(tsr_comm *comm, const tsr_trace_image *images, const bool *seen,
                        double wait_s)
{
    tsr_trace *trace = &comm->shared->trace;
    int world = trace->world_size, me = trace->world_rank;
    int *targets = malloc((size_t)world * sizeof *targets);
    bool *dumped = calloc((size_t)comm->size, sizeof *dumped);
    if (targets == NULL || dumped == NULL) {
        tsr_trace_dump_own(trace);
        return;
    }
    int n = 0;
    for (int r = 0; r < world; r++)
        if (r != me)
            targets[n++] = r;
    tsr_trace_request_dumps(trace, targets, n);
    tsr_trace_dump_own(trace);
    double end = tsr_time_s() + wait_s;
    for (;;) {
        /* a fresh buffer each round: the last round's late replies may land */
        tsr_trace_header *headers = calloc((size_t)comm->size, sizeof *headers);
        bool *answered = calloc((size_t)comm->size, sizeof *answered);
        if (headers == NULL || answered == NULL)
            break;
        tsr_trace_read_headers(trace, comm->world_ranks, comm->size, 0.5, headers, answered);
        bool all = true;
        for (int r = 0; r < comm->size; r++) {
            dumped[r] = dumped[r] || (answered[r] && headers[r].dumped == 1);
            all &= r == comm->rank || dumped[r] || !seen[r];
        }
        if (all || tsr_time_s() > end)
            break;
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    int64_t now = tsr_trace_now_ns();
    int own = trace->image->header.dumped == 1, remote = 0, missing = own ? 0 : 1;
    for (int r = 0; r < comm->size; r++) {
        if (r == comm->rank)
            continue;
        if (dumped[r])
            own++;
        else if (seen[r] &&
                 tsr_trace_write_report(trace, comm->world_ranks[r], &images[r], me, now))
            remote++;
        else
            missing++;
    }
    char path[PATH_MAX + 128], msg[PATH_MAX + 512];
    tsr_trace_report_path(trace, me, path, sizeof path);
    snprintf(msg, sizeof msg,
             "watchdog: rings of recent communication calls written as %s and the like (group "
             "%s: %d by their own ranks, %d by world rank %d from remote reads, %d not written); "
             "every other rank was asked to write its own",
             path, comm->name, own, remote, me, missing);
    say(msg);
    free(targets);
}

void tsr_comm_watchdog_fire(tsr_comm_request *req)
{
    static char msg[16384]; /* one call per process: it never returns */
    tsr_comm *comm = req->comm;
    tsr_trace *trace = &comm->shared->trace;
    double timeout = comm->shared->timeout_seconds;
    double deadline = timeout < 5.0 ? (timeout > 1.0 ? timeout : 1.0) : 5.0;
    int size = comm->size, world = trace->world_size;
    const char *op = tsr_comm_kind_name(req->kind);
    uint64_t *words = calloc((size_t)size, sizeof *words);
    bool *answered = calloc((size_t)size, sizeof *answered);
    tsr_watchdog_peer *peers = calloc((size_t)size, sizeof *peers);
    uint64_t *seqs = calloc((size_t)size, sizeof *seqs);
    bool *seen = calloc((size_t)size, sizeof *seen);
    bool p2p = req->seq == 0 && req->peer >= 0;
    /* a send/recv reads the whole world's rings (its culprit may be no
     * peer), a collective its group's */
    bool rings = trace->open && (p2p ? world : size) <= FIRE_MAX_RINGS;
    tsr_trace_image *images = rings ? calloc((size_t)size, sizeof *images) : NULL;
    tsr_trace_image *worlds = rings && p2p ? calloc((size_t)world, sizeof *worlds) : NULL;
    bool *world_seen = rings && p2p ? calloc((size_t)world, sizeof *world_seen) : NULL;
    if (words == NULL || answered == NULL || peers == NULL || seqs == NULL || seen == NULL) {
        snprintf(msg, sizeof msg,
                 "watchdog: %s on group %s did not complete within %.1f s (no memory left to "
                 "ask which ranks are missing). Ending the job",
                 op, comm->name, timeout);
        say(msg);
    } else {
        tsr_watchdog_read(&comm->window, size, deadline, words, answered);
        words[comm->rank] = comm->window.word != NULL ? *comm->window.word
                                                      : tsr_watchdog_word(req->seq, (int)req->kind);
        answered[comm->rank] = true;
        for (int r = 0; r < size; r++)
            peers[r] = tsr_watchdog_classify(req->seq, (int)req->kind, words[r], answered[r]);
        int64_t now = tsr_trace_now_ns();
        if (p2p && worlds != NULL && world_seen != NULL && images != NULL) {
            tsr_trace_read(trace, NULL, world, deadline, worlds, world_seen);
            worlds[trace->world_rank] = *trace->image;
            world_seen[trace->world_rank] = true;
            for (int r = 0; r < size; r++) {
                images[r] = worlds[comm->world_ranks[r]];
                seen[r] = world_seen[comm->world_ranks[r]];
            }
            format_p2p(msg, sizeof msg, req, comm, timeout, worlds, world_seen, world, now);
            say(msg);
        } else if (p2p) {
            tsr_watchdog_format_p2p(msg, sizeof msg, op, comm->name, req->peer, comm->world_ranks,
                                    &peers[req->peer], timeout);
            say(msg);
        } else {
            /* who never arrived first: the rings are read after it is out */
            tsr_watchdog_format(msg, sizeof msg, op, comm->name, size, comm->rank,
                                comm->world_ranks, req->seq, peers, timeout);
            say(msg);
            if (images != NULL) {
                tsr_trace_read(trace, comm->world_ranks, size, deadline, images, seen);
                images[comm->rank] = *trace->image;
                seen[comm->rank] = true;
                for (int r = 0; r < size; r++) {
                    const tsr_trace_entry *e =
                        seen[r] ? tsr_trace_find_seq(&images[r], comm->name, 0) : NULL;
                    seqs[r] = answered[r] ? peers[r].seq : e != NULL ? e->seq : 0;
                }
                size_t pos = 0;
                msg[0] = '\0';
                tsr_watchdog_append(msg, sizeof msg, &pos, "watchdog: %s #%llu on group %s: ", op,
                                    (unsigned long long)req->seq, comm->name);
                size_t head = pos;
                tsr_trace_diagnose(msg, sizeof msg, comm->name, req->seq, size, comm->world_ranks,
                                   images, seen, seqs, now);
                if (strlen(msg) > head)
                    say(msg);
            }
        }
        if (images != NULL)
            write_rings(comm, images, seen, deadline < 3.0 ? deadline : 3.0);
        else
            tsr_trace_dump_own(trace);
    }
    if (comm->shared->ops->abort)
        comm->shared->ops->abort(comm);
    MPI_Abort(comm->shared->abort_comm, 1);
    abort(); /* MPI_Abort does not return; this keeps the promise if it does */
}
