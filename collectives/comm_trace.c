/*
 * comm_trace.c - recording the ring of recent calls, exposing it to other
 * ranks, and writing it to report files (design in comm_trace.h).
 */
#include "comm_trace.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tessera/log.h"
#include "watchdog.h"

/* Copies at most size - 1 bytes and terminates; a NULL source is "". */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src == NULL ? 0 : strnlen(src, size - 1);
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "dir/file.c:12" -> "file.c:12": where a compiler lacks __FILE_NAME__
 * (tessera/call_site.h), the path would push the line number out of the
 * entry. */
static const char *base_name(const char *where)
{
    const char *slash = where != NULL ? strrchr(where, '/') : NULL;
    return slash != NULL ? slash + 1 : where;
}

static void make_run_tag(MPI_Comm world, char *tag, size_t len)
{
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, world);
    const char *job = getenv("SLURM_JOB_ID");
    const char *restart = getenv("SLURM_RESTART_COUNT");
    if (job != NULL && *job != '\0' && restart != NULL && *restart != '\0')
        snprintf(tag, len, "job%.20s.%.8s", job, restart);
    else if (job != NULL && *job != '\0')
        snprintf(tag, len, "job%.20s", job);
    else
        snprintf(tag, len, "pid%ld", pid);
}

tsr_status tsr_trace_create(MPI_Comm world, const char *report_dir, tsr_trace *t)
{
    memset(t, 0, sizeof *t);
    MPI_Comm_rank(world, &t->world_rank);
    MPI_Comm_size(world, &t->world_size);
    copy_text(t->report_dir, sizeof t->report_dir,
              report_dir != NULL && *report_dir != '\0' ? report_dir : ".");
    make_run_tag(world, t->run_tag, sizeof t->run_tag);
    void *base = NULL;
    int rc = tsr_watchdog_win_allocate(world, sizeof(tsr_trace_image), 1, &base, &t->win);
    if (rc != MPI_SUCCESS) {
        /* as the arrival windows (watchdog.c): every rank alike; the ring
         * is still kept and written by its own rank */
        tsr_log_once(TSR_LOG_WARN,
                     "this MPI offers no one-sided window for the rings of recent calls; a "
                     "stuck collective's message cannot say what the other ranks are doing");
        t->image = &t->private_image;
        t->image->header.idle_since_ns = tsr_trace_now_ns();
        return TSR_OK;
    }
    /* a read of a dead peer must come back as an error the diagnosis can
     * skip, not end the rank before it has said anything */
    MPI_Win_set_errhandler(t->win, MPI_ERRORS_RETURN);
    t->image = base;
    memset(t->image, 0, sizeof *t->image);
    t->image->header.idle_since_ns = tsr_trace_now_ns();
    MPI_Win_lock_all(MPI_MODE_NOCHECK, t->win);
    t->open = true;
    MPI_Win_sync(t->win);
    return TSR_OK;
}

void tsr_trace_free(tsr_trace *t)
{
    if (t->open) {
        MPI_Win_unlock_all(t->win);
        MPI_Win_free(&t->win);
        t->open = false;
    }
    t->image = NULL;
}

uint64_t tsr_trace_begin(tsr_trace *t, const char *group, uint64_t seq, int kind, int peer,
                         uint64_t bytes, tsr_call_site site)
{
    if (t == NULL || t->image == NULL)
        return 0;
    tsr_trace_header *h = &t->image->header;
    uint64_t serial = h->serial + 1;
    tsr_trace_entry *e = &t->image->ring[(serial - 1) % TSR_TRACE_RING];
    __atomic_store_n(&e->serial_end, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&e->serial, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    int64_t now = tsr_trace_now_ns();
    e->seq = seq;
    e->bytes = bytes;
    e->start_ns = now;
    e->end_ns = 0;
    e->kind = kind;
    e->peer = peer;
    copy_text(e->group, sizeof e->group, group);
    copy_text(e->func, sizeof e->func, site.func);
    copy_text(e->where, sizeof e->where, base_name(site.where));
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&e->serial, serial, __ATOMIC_RELAXED);
    __atomic_store_n(&e->serial_end, serial, __ATOMIC_RELEASE);
    __atomic_store_n(&h->serial, serial, __ATOMIC_RELEASE);
    if (h->waiting == 0)
        h->idle_since_ns = now;
    return serial;
}

void tsr_trace_end(tsr_trace *t, uint64_t serial)
{
    if (t == NULL || t->image == NULL || serial == 0)
        return;
    tsr_trace_entry *e = &t->image->ring[(serial - 1) % TSR_TRACE_RING];
    if (__atomic_load_n(&e->serial, __ATOMIC_ACQUIRE) == serial)
        __atomic_store_n(&e->end_ns, tsr_trace_now_ns(), __ATOMIC_RELEASE);
}

void tsr_trace_wait_begin(tsr_trace *t, uint64_t serial, tsr_call_site site)
{
    if (t == NULL || t->image == NULL)
        return;
    tsr_trace_header *h = &t->image->header;
    h->wait_start_ns = tsr_trace_now_ns();
    copy_text(h->wait_func, sizeof h->wait_func, site.func);
    copy_text(h->wait_where, sizeof h->wait_where, base_name(site.where));
    __atomic_store_n(&h->waiting, serial, __ATOMIC_RELEASE);
}

void tsr_trace_wait_end(tsr_trace *t)
{
    if (t == NULL || t->image == NULL)
        return;
    tsr_trace_header *h = &t->image->header;
    h->idle_since_ns = tsr_trace_now_ns();
    __atomic_store_n(&h->waiting, 0, __ATOMIC_RELEASE);
}

bool tsr_trace_dump_requested(const tsr_trace *t)
{
    return t != NULL && t->image != NULL &&
           __atomic_load_n(&t->image->header.dump_request, __ATOMIC_ACQUIRE) != 0 &&
           t->image->header.dumped == 0;
}

void tsr_trace_dump_own(tsr_trace *t)
{
    if (t == NULL || t->image == NULL || t->image->header.dumped != 0)
        return;
    tsr_trace_header *h = &t->image->header;
    if (tsr_trace_write_report(t, t->world_rank, t->image, t->world_rank, tsr_trace_now_ns()))
        __atomic_store_n(&h->dumped, 1, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&h->dumped, 2, __ATOMIC_RELEASE); /* tried: nobody else can do better */
    if (t->open)
        MPI_Win_sync(t->win);
}

void tsr_trace_read(tsr_trace *t, const int *targets, int n, double deadline_s,
                    tsr_trace_image *images, bool *answered)
{
    /* targets NULL: world ranks 0..n-1 (tsr_watchdog_rget_all's rule) */
    if (!t->open) {
        for (int i = 0; i < n; i++)
            answered[i] = false;
        return;
    }
    tsr_watchdog_rget_all(t->win, targets, n, 0, images, sizeof *images, deadline_s, answered);
}

void tsr_trace_read_headers(tsr_trace *t, const int *targets, int n, double deadline_s,
                            tsr_trace_header *headers, bool *answered)
{
    if (!t->open) {
        for (int i = 0; i < n; i++)
            answered[i] = false;
        return;
    }
    tsr_watchdog_rget_all(t->win, targets, n, offsetof(tsr_trace_image, header), headers,
                          sizeof *headers, deadline_s, answered);
}

void tsr_trace_request_dumps(tsr_trace *t, const int *targets, int n)
{
    if (!t->open)
        return;
    static const uint64_t one = 1;
    tsr_watchdog_rput_all(t->win, targets, n,
                          offsetof(tsr_trace_image, header) +
                              offsetof(tsr_trace_header, dump_request),
                          &one, sizeof one, 1.0);
}

void tsr_trace_report_path(const tsr_trace *t, int world_rank, char *buf, size_t len)
{
    snprintf(buf, len, "%s/tessera-hang-%s.rank%d.txt", t->report_dir, t->run_tag, world_rank);
}

bool tsr_trace_write_report(const tsr_trace *t, int world_rank, const tsr_trace_image *image,
                            int writer_rank, int64_t now_ns)
{
    char path[PATH_MAX + 128], tmp[PATH_MAX + 160];
    tsr_trace_report_path(t, world_rank, path, sizeof path);
    /* two ranks may write the same report (its owner late, the firing rank
     * from a remote read): each writes its own file and renames it */
    snprintf(tmp, sizeof tmp, "%s.part%d", path, writer_rank);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return false;
    tsr_trace_print_report(f, world_rank, image, writer_rank, now_ns);
    bool ok = fflush(f) == 0 && !ferror(f);
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        unlink(tmp);
        errno = saved;
        return false;
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        errno = saved;
        return false;
    }
    return true;
}
