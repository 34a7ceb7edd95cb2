/*
 * startup_watch.c - a rank that stalls before MPI_Init ends the job with
 * its name and what it was doing (startup_watch.h).
 *
 * The thread sleeps on a condition variable until the current phase's
 * deadline; entering a phase or stopping wakes it to take the new deadline.
 * Phase, detail and clock are shared under the mutex; the decision to fire
 * is taken under it too, so a watch stopped has either fired already or
 * never will.
 */
#include "startup_watch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tessera/log.h"

struct tsr_startup_watch {
    double timeout; /* seconds in a phase of this rank's own work */
    double grace;   /* added for the phase of waiting */
    int rank;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC */
    pthread_t thread;
    bool running; /* the thread exists and is not joined */
    bool stopping;
    tsr_startup_phase phase;
    char detail[1024];
    struct timespec since; /* CLOCK_MONOTONIC, when the phase was entered */
};

typedef struct phase_text {
    const char *doing; /* "has spent more than 3.0 s <doing> (<detail>)" */
    const char *hint;
} phase_text;

static const phase_text phases[TSR_STARTUP_PHASE_COUNT] = {
    [TSR_STARTUP_CHECKING_PATHS] = {"checking the --save, --load, --metrics-file and "
                                    "--watchdog-dir paths",
                                    "a slow or hung file system?"},
    [TSR_STARTUP_OPENING_DATASET] = {"opening the dataset", "a slow or hung file system?"},
    [TSR_STARTUP_PREPARING_MODEL] = {"preparing the model",
                                     "a slow or hung file system under the plugin, or a plugin "
                                     "that does not return?"},
    [TSR_STARTUP_BINDING] = {"binding the process to its cores",
                             "hwloc's topology discovery does not return?"},
    [TSR_STARTUP_MPI_INIT] = {"MPI_Init (waiting for every rank to start)",
                              "a peer has not started (its own message says why; none if it is "
                              "stopped or its node is down)."},
    [TSR_STARTUP_MPI_SETUP] = {"MPI set-up (finding the ranks of each node, creating the "
                               "communicators)",
                               "a peer has not come to it (stuck after MPI_Init, stopped, or its "
                               "node is down)."},
};

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) * 1e-9;
}

static bool waits_for_peers(tsr_startup_phase phase)
{
    return phase == TSR_STARTUP_MPI_INIT || phase == TSR_STARTUP_MPI_SETUP;
}

/* The MPI set-up's splits are bounded by the collectives' watchdog, whose
 * report (reading the peers' rings, asking them to write theirs) takes up
 * to 2 read deadlines of at most 5 s and 4.5 s more: the watch waits that
 * long again, so that the report that names a missing rank comes out
 * whole. */
#define SETUP_REPORT_SECONDS 15.0

static double limit_of(const tsr_startup_watch *w)
{
    if (w->phase == TSR_STARTUP_MPI_SETUP)
        return w->timeout + w->grace + SETUP_REPORT_SECONDS;
    return w->phase == TSR_STARTUP_MPI_INIT ? w->timeout + w->grace : w->timeout;
}

/* Never returns. MPI may not be initialised, and a rank waiting in set-up
 * cannot make the others' MPI_Abort reach them either: the exit code is
 * what mpirun sees, and it ends the other ranks. */
static void fire(const tsr_startup_watch *w, double waited)
{
    const phase_text *p = &phases[w->phase];
    char line[8192];
    int n;
    if (waits_for_peers(w->phase))
        n = snprintf(line, sizeof line,
                     "[tessera r%d] start-up watchdog: world rank %d has waited %.1f s in %s: %s "
                     "Ending the job; raise --distributed-timeout-minutes if start-up is just "
                     "slow\n",
                     w->rank, w->rank, waited, p->doing, p->hint);
    else
        n = snprintf(line, sizeof line,
                     "[tessera r%d] start-up watchdog: world rank %d has spent more than %.1f s "
                     "%s%s%s%s: %s Ending the job; raise --distributed-timeout-minutes if this is "
                     "just slow\n",
                     w->rank, w->rank, w->timeout, p->doing, w->detail[0] != '\0' ? " (" : "",
                     w->detail, w->detail[0] != '\0' ? ")" : "", p->hint);
    /* write(2), not stdio: the main thread may hold stderr's lock, stuck
     * in the very write that the watch is here to end */
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (write(STDERR_FILENO, line, len) < 0)
        _exit(1);
    _exit(1);
}

static void *watcher(void *arg)
{
    tsr_startup_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        double limit = limit_of(w);
        struct timespec deadline = w->since;
        long whole = (long)limit;
        deadline.tv_sec += whole;
        deadline.tv_nsec += (long)((limit - (double)whole) * 1e9);
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->changed, &w->lock, &deadline);
        /* woken early (a new phase, a stop, spuriously): the loop takes the
         * deadline again */
        double spent = seconds_since(&w->since);
        if (!w->stopping && spent >= limit_of(w))
            fire(w, spent);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* The hook of startup_watch.h: sleeps the whole time even when a signal
 * (--exit-signal-handler's) interrupts it. */
static void test_stall(const tsr_startup_watch *w, tsr_startup_phase phase)
{
    const char *rank = getenv("TSR_TEST_STALL_DATASET_RANK");
    if (phase != TSR_STARTUP_OPENING_DATASET || rank == NULL || atoi(rank) != w->rank)
        return;
    const char *seconds = getenv("TSR_TEST_STALL_SECONDS");
    double s = seconds != NULL ? atof(seconds) : 60.0;
    fprintf(stderr,
            "[tessera r%d] start-up: world rank %d (pid %ld) stalls %.1f s opening the dataset "
            "for the watch test\n",
            w->rank, w->rank, (long)getpid(), s);
    fflush(stderr);
    struct timespec left = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

tsr_startup_watch *tsr_startup_watch_create(double timeout_seconds, int world_rank)
{
    if (!(timeout_seconds > 0.0))
        return NULL;
    tsr_startup_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->timeout = timeout_seconds;
    w->grace = timeout_seconds < 10.0 ? timeout_seconds : 10.0;
    w->rank = world_rank;
    w->phase = TSR_STARTUP_CHECKING_PATHS;
    clock_gettime(CLOCK_MONOTONIC, &w->since);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, &attr);
    pthread_condattr_destroy(&attr);
    /* signals (--exit-signal-handler's, SIGINT) are the main thread's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, watcher, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        w->running = true;
    else
        tsr_log(TSR_LOG_WARN,
                "cannot start the start-up watch thread (%s): a rank that stalls before "
                "MPI_Init will not be named",
                strerror(rc));
    return w;
}

void tsr_startup_watch_enter(tsr_startup_watch *watch, tsr_startup_phase phase, const char *detail)
{
    if (watch == NULL || (unsigned)phase >= TSR_STARTUP_PHASE_COUNT)
        return;
    pthread_mutex_lock(&watch->lock);
    watch->phase = phase;
    snprintf(watch->detail, sizeof watch->detail, "%s", detail != NULL ? detail : "");
    clock_gettime(CLOCK_MONOTONIC, &watch->since);
    pthread_cond_broadcast(&watch->changed);
    pthread_mutex_unlock(&watch->lock);
    test_stall(watch, phase);
}

void tsr_startup_watch_stop(tsr_startup_watch *watch)
{
    if (watch == NULL)
        return;
    pthread_mutex_lock(&watch->lock);
    bool running = watch->running;
    watch->stopping = true;
    watch->running = false;
    pthread_cond_broadcast(&watch->changed);
    pthread_mutex_unlock(&watch->lock);
    if (running)
        pthread_join(watch->thread, NULL);
}

void tsr_startup_watch_destroy(tsr_startup_watch *watch)
{
    if (watch == NULL)
        return;
    tsr_startup_watch_stop(watch);
    pthread_cond_destroy(&watch->changed);
    pthread_mutex_destroy(&watch->lock);
    free(watch);
}
