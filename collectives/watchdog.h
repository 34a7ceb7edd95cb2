/*
 * watchdog.h - no silent hangs: bounded waits, and who never arrived.
 *
 * Every communicator owns an arrival window: one 64-bit word per member in
 * an MPI RMA window (MPI_Win_allocate, kept in a passive lock_all epoch for
 * the communicator's life). When a rank starts its n-th collective on the
 * group it stores (n << 8 | kind) into its own word: a local store, no
 * message. When a wait outlives the timeout, the waiting rank reads every
 * member's word with MPI_Rget (bounded by a short deadline, so a dead peer
 * cannot hang the diagnosis) and classifies each member: arrived, never
 * arrived (its count is lower), at a different collective (same count,
 * other kind), or did not answer. It prints one message naming the
 * operation, the group and those ranks, and aborts the job.
 *
 * The classification and the message are pure functions
 * (tsr_watchdog_classify, tsr_watchdog_format) so tests check them without
 * a hang. Called by comm.c only.
 */
#ifndef TSR_COLLECTIVES_WATCHDOG_H
#define TSR_COLLECTIVES_WATCHDOG_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

typedef struct tsr_watchdog_window {
    MPI_Win win;
    uint64_t *word; /* this rank's published (seq << 8 | kind) */
    bool open;
} tsr_watchdog_window;

typedef enum tsr_watchdog_state {
    TSR_PEER_ARRIVED = 0,
    TSR_PEER_NEVER_ARRIVED,
    TSR_PEER_OTHER_COLLECTIVE,
    TSR_PEER_NO_ANSWER
} tsr_watchdog_state;

typedef struct tsr_watchdog_peer {
    tsr_watchdog_state state;
    uint64_t seq; /* collectives the peer has started on the group */
    int kind;     /* tsr_comm_kind of its latest one, -1 if none */
} tsr_watchdog_peer;

/* MPI_Win_allocate of a window the watchdog reads (collective over comm);
 * returns MPI's code: a failure is returned, never fatal. */
int tsr_watchdog_win_allocate(MPI_Comm comm, size_t bytes, int disp_unit, void *base,
                              MPI_Win *win);

/* Collective over comm. */
tsr_status tsr_watchdog_window_create(MPI_Comm comm, tsr_watchdog_window *w);
/* Collective over the window's communicator. */
void tsr_watchdog_window_free(tsr_watchdog_window *w);

static inline uint64_t tsr_watchdog_word(uint64_t seq, int kind)
{
    return (seq << 8) | (uint64_t)(kind & 0xff);
}

/* Publishes this rank's arrival at its seq-th collective of `kind`. */
void tsr_watchdog_publish(tsr_watchdog_window *w, uint64_t seq, int kind);

/* Reads every member's word into words[] (answered[r] false when member r
 * did not answer within deadline_s). Collective in nothing; may be called
 * while other operations on the communicator are outstanding. */
void tsr_watchdog_read(tsr_watchdog_window *w, int size, double deadline_s, uint64_t *words,
                       bool *answered);

/* Reads bytes_each bytes at displacement disp (bytes) of the window of
 * each target (targets NULL: ranks 0..n-1) into dest, one after another;
 * answered[i] false when target i did not answer within deadline_s. The
 * window must be in a lock_all epoch with displacement unit 1 for disp to
 * be in bytes (the arrival windows read at 0 only). */
void tsr_watchdog_rget_all(MPI_Win win, const int *targets, int n, size_t disp, void *dest,
                           size_t bytes_each, double deadline_s, bool *answered);
/* Writes the same bytes at disp into each target's window, waiting at
 * most deadline_s for the local completions. */
void tsr_watchdog_rput_all(MPI_Win win, const int *targets, int n, size_t disp,
                           const void *src, size_t bytes, double deadline_s);

/* State of a member, given the waiting rank's seq and kind. */
tsr_watchdog_peer tsr_watchdog_classify(uint64_t my_seq, int my_kind, uint64_t word,
                                        bool answered);

/* Appends to buf (len bytes, *pos used) with snprintf semantics, never
 * past len; shared by every watchdog message. */
void tsr_watchdog_append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The message for a collective that did not complete. world_ranks maps
 * group ranks to world ranks; peers has one entry per group member. */
void tsr_watchdog_format(char *buf, size_t len, const char *op, const char *group, int size,
                         int my_rank, const int *world_ranks, uint64_t my_seq,
                         const tsr_watchdog_peer *peers, double timeout_s);

/* The message for a send/recv that did not complete. */
void tsr_watchdog_format_p2p(char *buf, size_t len, const char *op, const char *group,
                             int peer, const int *world_ranks, const tsr_watchdog_peer *peer_state,
                             double timeout_s);

#endif /* TSR_COLLECTIVES_WATCHDOG_H */
