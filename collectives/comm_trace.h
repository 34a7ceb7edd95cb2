/*
 * comm_trace.h - hang forensics: every rank's ring of its recent
 * communication calls, readable by any other rank.
 *
 * Naming the rank that never arrived is not enough when that rank is alive
 * and doing something else. So each process keeps, in memory exposed by an
 * MPI window on the world (MPI_Win_allocate, as the arrival windows of
 * watchdog.h), a header saying what it is doing now and a ring of its last
 * TSR_TRACE_RING calls: group, collective number on the group, operation,
 * bytes, the function and line that made the call, when it started and
 * when it completed. Recording is a few plain stores per call, no message.
 *
 * When a wait outlives the timeout, the waiting rank reads the headers and
 * rings of the group's members (bounded by a deadline: a dead or stopped
 * peer cannot hang the diagnosis), says where they diverge and what the
 * ranks behind are doing (tsr_trace_diagnose), asks every rank to write
 * its own ring beside the log (a flag each rank's waits poll), and writes
 * itself the rings of the ranks that could not (comm.c, watchdog_fire).
 *
 * Entries are written by their owner while others may read them: the
 * owner zeroes both copies of an entry's serial (first and last field),
 * fills it, and stores them again; a reader's copy counts only when both
 * copies are the serial its slot must hold, which rejects a copy torn by a
 * concurrent write as long as the transport copies in address order (it
 * is a diagnosis, not a guarantee). A reader may see a call's end time not
 * yet stored; it then reports the call as still in flight.
 *
 * The diagnosis and the ring file are pure functions of what was read, so
 * unit tests check them without a hang. Used by comm.c (recording) and
 * watchdog_fire.c (reading, diagnosing, writing).
 */
#ifndef TSR_COLLECTIVES_COMM_TRACE_H
#define TSR_COLLECTIVES_COMM_TRACE_H

#include <limits.h>
#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "comm.h"

#define TSR_TRACE_RING 64
#define TSR_TRACE_GROUP_LEN 32 /* as tsr_comm's name: lookups compare whole names */
#define TSR_TRACE_FUNC_LEN 48
#define TSR_TRACE_WHERE_LEN 56

/* One communication call. Times are CLOCK_REALTIME nanoseconds, so that
 * another rank (on another node, with synchronised clocks) can say how
 * long ago they were. */
typedef struct tsr_trace_entry {
    uint64_t serial; /* this rank's calls, all groups, 1-based; 0: empty or being written */
    uint64_t seq;    /* collective number on the group; 0 for send/recv */
    uint64_t bytes;
    int64_t start_ns;
    int64_t end_ns; /* 0 while in flight */
    int32_t kind;   /* tsr_comm_kind */
    int32_t peer;   /* send/recv: group rank of the (first) peer; else -1 */
    char group[TSR_TRACE_GROUP_LEN];
    char func[TSR_TRACE_FUNC_LEN];
    char where[TSR_TRACE_WHERE_LEN]; /* file:line */
    uint64_t serial_end;             /* serial again, stored last: a copy torn by a
                                      * concurrent write has serial != serial_end */
} tsr_trace_entry;

/* What the process is doing now. */
typedef struct tsr_trace_header {
    uint64_t serial;       /* calls started */
    uint64_t waiting;      /* serial of the call being waited for; 0: not waiting */
    int64_t wait_start_ns; /* when that wait began */
    int64_t idle_since_ns; /* end of the last wait, or of the last call started */
    uint64_t dump_request; /* set by a remote rank: write your ring now */
    uint64_t dumped;       /* set once this rank has written it */
    char wait_func[TSR_TRACE_FUNC_LEN];
    char wait_where[TSR_TRACE_WHERE_LEN];
} tsr_trace_header;

/* The header and ring of one rank, as exposed (and as read remotely). */
typedef struct tsr_trace_image {
    tsr_trace_header header;
    tsr_trace_entry ring[TSR_TRACE_RING];
} tsr_trace_image;

typedef struct tsr_trace {
    MPI_Win win;
    bool open;
    tsr_trace_image *image;        /* this rank's, in the window (or private) */
    tsr_trace_image private_image; /* when the MPI offers no window */
    int world_rank, world_size;
    char run_tag[48]; /* names this run's report files */
    char report_dir[PATH_MAX];
} tsr_trace;

/* Collective over the world communicator. report_dir may be NULL (the
 * working directory). run_tag: Slurm's job id, else rank 0's pid. */
tsr_status tsr_trace_create(MPI_Comm world, const char *report_dir, tsr_trace *t);
void tsr_trace_free(tsr_trace *t);

/* Records the start of a call; returns its serial (for tsr_trace_end). */
uint64_t tsr_trace_begin(tsr_trace *t, const char *group, uint64_t seq, int kind, int peer,
                         uint64_t bytes, tsr_call_site site);
void tsr_trace_end(tsr_trace *t, uint64_t serial);
void tsr_trace_wait_begin(tsr_trace *t, uint64_t serial, tsr_call_site site);
void tsr_trace_wait_end(tsr_trace *t);

/* True once a remote rank has asked for this rank's ring (cheap: a load). */
bool tsr_trace_dump_requested(const tsr_trace *t);
/* Writes this rank's ring to its report file and marks it dumped. */
void tsr_trace_dump_own(tsr_trace *t);

/* Reads the images of world ranks targets[0..n) into images (answered[i]
 * false when one did not answer within deadline_s). */
void tsr_trace_read(tsr_trace *t, const int *targets, int n, double deadline_s,
                    tsr_trace_image *images, bool *answered);
/* The headers only (to see who has written its ring). */
void tsr_trace_read_headers(tsr_trace *t, const int *targets, int n, double deadline_s,
                            tsr_trace_header *headers, bool *answered);
/* Asks world ranks targets[0..n) to write their rings. */
void tsr_trace_request_dumps(tsr_trace *t, const int *targets, int n);

/* The report file of world rank r: DIR/tessera-hang-TAG.rank<r>.txt. */
void tsr_trace_report_path(const tsr_trace *t, int world_rank, char *buf, size_t len);
/* Writes an image to its report file; writer_rank != rank marks one read
 * remotely. Returns false (errno set) when the file cannot be written. */
bool tsr_trace_write_report(const tsr_trace *t, int world_rank, const tsr_trace_image *image,
                            int writer_rank, int64_t now_ns);

/* ---- pure functions (comm_trace_report.c) ---------------------------- */

int64_t tsr_trace_now_ns(void); /* CLOCK_REALTIME */

/* The entry with this serial, or NULL when the ring no longer holds it. */
const tsr_trace_entry *tsr_trace_find(const tsr_trace_image *image, uint64_t serial);
/* The newest entry on `group` with collective number seq (0: the newest
 * collective on the group), or NULL. */
const tsr_trace_entry *tsr_trace_find_seq(const tsr_trace_image *image, const char *group,
                                          uint64_t seq);

/* One line saying what a rank is doing: waiting in which call, from where,
 * for how long; or in computation since when, after which call. */
void tsr_trace_describe_state(const tsr_trace_image *image, int64_t now_ns, char *buf, size_t len);

/* The diagnosis of a collective that did not complete, appended to buf
 * as sentences (nothing when no member is behind and no calls differ):
 * members[i] is group rank i's image (answered[i] false: unread), seqs[i]
 * its collective count on the group (from the arrival window). Says which
 * members are behind and what they are doing, and the first collective
 * number at which the members' calls differ (operation, bytes or call
 * site), as far as the rings reach. */
void tsr_trace_diagnose(char *buf, size_t len, const char *group, uint64_t my_seq, int size,
                        const int *world_ranks, const tsr_trace_image *members,
                        const bool *answered, const uint64_t *seqs, int64_t now_ns);

/* The text of a ring report: the state line, then one line per call,
 * oldest first. */
void tsr_trace_print_report(FILE *out, int world_rank, const tsr_trace_image *image,
                            int writer_rank, int64_t now_ns);

#endif /* TSR_COLLECTIVES_COMM_TRACE_H */
