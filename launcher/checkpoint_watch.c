/*
 * checkpoint_watch.c - a rank stuck in a checkpoint save or load ends the
 * job with its name (checkpoint_watch.h).
 */
#include "checkpoint_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint/checkpoint.h"
#include "collectives/watchdog.h"
#include "tessera/log.h"

typedef struct watch_state {
    double timeout;
    MPI_Comm comm;
    int rank, size;
    tsr_watchdog_window window;
    char what[32], path[4200];
    uint64_t progress; /* written by the rank, read by the thread */
    bool watching;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t stop;
} watch_state;

static watch_state state = {.lock = PTHREAD_MUTEX_INITIALIZER, .stop = PTHREAD_COND_INITIALIZER};

/* Never returns: names the ranks whose progress is behind this one's
 * (words, answered: every rank's progress as just read). */
static void fire(watch_state *w, uint64_t mine, const uint64_t *words, const bool *answered)
{
    char msg[4096];
    int n = snprintf(msg, sizeof msg,
                     "watchdog: %s of %s made no progress on any rank for %.1f s (world rank "
                     "%d at step %llu)",
                     w->what, w->path, w->timeout, w->rank, (unsigned long long)mine);
    if (words != NULL && answered != NULL) {
        int behind = 0;
        for (int r = 0; r < w->size && n < (int)sizeof msg; r++) {
            uint64_t step = words[r] >> 8;
            if (r == w->rank || (answered[r] && step >= mine))
                continue;
            n += snprintf(msg + n, sizeof msg - (size_t)n, "%s world rank %d (%s)",
                          behind++ == 0 ? "; behind it:" : ",", r,
                          answered[r] ? "fewer steps" : "did not answer: dead, or stuck");
            if (answered[r] && n < (int)sizeof msg)
                n += snprintf(msg + n, sizeof msg - (size_t)n, " at step %llu",
                              (unsigned long long)step);
        }
        if (behind == 0 && n < (int)sizeof msg)
            n += snprintf(msg + n, sizeof msg - (size_t)n,
                          "; no rank is behind: every rank waits inside HDF5 (a hung file "
                          "system?)");
    }
    if (n < (int)sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n,
                 ". Ending the job; the previous checkpoint is untouched; raise "
                 "--distributed-timeout-minutes if the file system is just slow");
    fprintf(stderr, "[tessera r%d] %s\n", w->rank, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    abort();
}

/* Every rank's progress into words/answered; true if it changed since the
 * last call (the ranks are still moving, only this one waits). */
static bool others_moved(watch_state *w, uint64_t *words, bool *answered, uint64_t *last_words)
{
    tsr_watchdog_read(&w->window, w->size, 5.0, words, answered);
    bool moved = memcmp(words, last_words, (size_t)w->size * sizeof *words) != 0;
    memcpy(last_words, words, (size_t)w->size * sizeof *words);
    return moved;
}

/* Fires only when no rank at all has made progress for the timeout: a
 * rank with nothing to write waits in HDF5's collective close while the
 * others write, which is not a hang. */
static void *watcher(void *arg)
{
    watch_state *w = arg;
    uint64_t *words = calloc((size_t)w->size, sizeof *words);
    uint64_t *last_words = calloc((size_t)w->size, sizeof *last_words);
    bool *answered = calloc((size_t)w->size, sizeof *answered);
    if (words == NULL || last_words == NULL || answered == NULL) {
        free(words);
        free(last_words);
        free(answered);
        return NULL; /* no memory to watch with: the save goes on unwatched */
    }
    pthread_mutex_lock(&w->lock);
    uint64_t seen = __atomic_load_n(&w->progress, __ATOMIC_ACQUIRE);
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    bool first_look = true; /* the first read only sets the snapshot */
    while (w->watching) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->stop, &w->lock, &until);
        if (!w->watching)
            break;
        uint64_t now_progress = __atomic_load_n(&w->progress, __ATOMIC_ACQUIRE);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now_progress != seen) {
            seen = now_progress;
            last = now;
        } else if ((double)(now.tv_sec - last.tv_sec) + (now.tv_nsec - last.tv_nsec) * 1e-9 >
                   w->timeout) {
            pthread_mutex_unlock(&w->lock);
            bool moved = others_moved(w, words, answered, last_words);
            pthread_mutex_lock(&w->lock);
            if (!w->watching)
                break;
            if (!moved && !first_look)
                fire(w, seen, words, answered);
            first_look = false;
            last = now;
        }
    }
    pthread_mutex_unlock(&w->lock);
    free(words);
    free(last_words);
    free(answered);
    return NULL;
}

static void watch_begin(void *ctx, MPI_Comm comm, const char *what, const char *path)
{
    watch_state *w = ctx;
    w->comm = comm;
    MPI_Comm_rank(comm, &w->rank);
    MPI_Comm_size(comm, &w->size);
    snprintf(w->what, sizeof w->what, "%s", what);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->progress = 1;
    if (tsr_watchdog_window_create(comm, &w->window) != TSR_OK)
        w->window.open = false; /* the message then names no rank */
    tsr_watchdog_publish(&w->window, 1, 0);
    w->watching = true;
    if (pthread_create(&w->thread, NULL, watcher, w) != 0) {
        w->watching = false;
        tsr_log(TSR_LOG_WARN, "cannot start the checkpoint watch thread: %s", strerror(errno));
    }
}

static void watch_step(void *ctx)
{
    watch_state *w = ctx;
    uint64_t p = __atomic_add_fetch(&w->progress, 1, __ATOMIC_ACQ_REL);
    tsr_watchdog_publish(&w->window, p, 0);
}

static void watch_end(void *ctx)
{
    watch_state *w = ctx;
    pthread_mutex_lock(&w->lock);
    bool running = w->watching;
    w->watching = false;
    pthread_cond_broadcast(&w->stop);
    pthread_mutex_unlock(&w->lock);
    if (running)
        pthread_join(w->thread, NULL);
    if (w->window.open)
        tsr_watchdog_window_free(&w->window);
}

void tsr_checkpoint_watch_install(double timeout_seconds, int mpi_thread_level)
{
    if (mpi_thread_level < MPI_THREAD_MULTIPLE || timeout_seconds <= 0.0) {
        tsr_checkpoint_set_watch(NULL);
        return;
    }
    state.timeout = timeout_seconds;
    tsr_checkpoint_watch watch = {&state, watch_begin, watch_step, watch_end};
    tsr_checkpoint_set_watch(&watch);
}
