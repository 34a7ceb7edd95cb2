/*
 * checkpoint_async.c - the background checkpoint writer (checkpoint_async.h).
 *
 * One thread per rank, started at creation, sleeping on a condition
 * variable between saves. The staging buffers are owned by the in-flight
 * save until it completes, which is why a new save waits first.
 */
#include "checkpoint_async.h"

#include <hdf5.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/log.h"
#include "tessera/timer.h"

struct tsr_checkpoint_async {
    MPI_Comm comm;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool pending, busy, quit;
    /* the job in flight */
    char dir[4096];
    tsr_config cfg;
    tsr_checkpoint_state state;
    tsr_checkpoint_content content;
    tsr_status result;
    char message[1024];
    double write_seconds;
    /* staging */
    float *params, *adam_m, *adam_v, *frozen;
    size_t param_count, state_count, frozen_count;
};

static void free_staging(tsr_checkpoint_async *a)
{
    free(a->params);
    free(a->adam_m);
    free(a->adam_v);
    free(a->frozen);
    free(a);
}

tsr_status tsr_checkpoint_async_supported(int mpi_thread_level, bool data_uses_hdf5)
{
    if (mpi_thread_level < MPI_THREAD_MULTIPLE)
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "--async-save needs an MPI library with MPI_THREAD_MULTIPLE (the "
                             "background writer calls MPI beside training); this one offers "
                             "less: drop --async-save");
    hbool_t safe = 0;
    if (data_uses_hdf5 && (H5is_library_threadsafe(&safe) < 0 || !safe))
        return tsr_error_set(TSR_ERR_UNSUPPORTED,
                             "--async-save with HDF5 token data needs a thread-safe libhdf5 "
                             "(training reads the data while the background thread writes the "
                             "checkpoint) and this one is not; use .bin/.idx data or drop "
                             "--async-save");
    return TSR_OK;
}

static void *writer(void *arg)
{
    tsr_checkpoint_async *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->pending && !a->quit)
            pthread_cond_wait(&a->changed, &a->lock);
        if (!a->pending) /* quit with nothing to do */
            break;
        a->pending = false;
        pthread_mutex_unlock(&a->lock);
        uint64_t t0 = tsr_time_ns();
        tsr_status st = tsr_checkpoint_save(a->dir, &a->cfg, &a->state, &a->content, a->comm);
        double seconds = (double)(tsr_time_ns() - t0) * 1e-9;
        pthread_mutex_lock(&a->lock);
        a->result = st;
        snprintf(a->message, sizeof a->message, "%s", st == TSR_OK ? "" : tsr_last_error());
        a->write_seconds = seconds;
        a->busy = false;
        pthread_cond_broadcast(&a->changed);
        if (st == TSR_OK)
            tsr_log_once(TSR_LOG_INFO,
                         "saved checkpoint at iteration %lld in %.3f s (in the background)",
                         (long long)a->state.iteration, seconds);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

tsr_status tsr_checkpoint_async_create(MPI_Comm comm, size_t param_count, size_t state_count,
                                       size_t frozen_count, tsr_checkpoint_async **out)
{
    *out = NULL;
    tsr_checkpoint_async *a = calloc(1, sizeof *a);
    if (a == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for --async-save");
    a->param_count = param_count;
    a->state_count = state_count;
    a->frozen_count = frozen_count;
    a->params = malloc((param_count + 1) * sizeof(float));
    a->adam_m = malloc((state_count + 1) * sizeof(float));
    a->adam_v = malloc((state_count + 1) * sizeof(float));
    a->frozen = malloc((frozen_count + 1) * sizeof(float));
    int ok = a->params != NULL && a->adam_m != NULL && a->adam_v != NULL && a->frozen != NULL;
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) {
        free_staging(a);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                             "--async-save: cannot allocate %.1f MiB of staging buffers on "
                             "some rank; drop --async-save",
                             (double)(param_count + 2 * state_count + frozen_count) * 4 /
                                 1048576.0);
    }
    MPI_Comm_dup(comm, &a->comm);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->changed, NULL);
    if (pthread_create(&a->thread, NULL, writer, a) != 0) {
        /* every rank must agree, or the others' writers would wait in
         * collectives for this one */
        ok = 0;
    }
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) {
        if (ok) {
            tsr_checkpoint_async_destroy(a);
        } else {
            MPI_Comm_free(&a->comm);
            free_staging(a);
        }
        return tsr_error_set(TSR_ERR_INTERNAL, "--async-save: cannot start the writer thread");
    }
    tsr_log_once(TSR_LOG_INFO, "--async-save: %.1f MiB of staging buffers per rank",
                 (double)(param_count + 2 * state_count + frozen_count) * 4 / 1048576.0);
    *out = a;
    return TSR_OK;
}

/* With the lock held: waits until nothing is in flight; the status. */
static tsr_status wait_locked(tsr_checkpoint_async *a)
{
    while (a->busy)
        pthread_cond_wait(&a->changed, &a->lock);
    tsr_status st = a->result;
    if (st != TSR_OK)
        tsr_error_set(st, "%s", a->message);
    a->result = TSR_OK;
    return st;
}

tsr_status tsr_checkpoint_async_wait(tsr_checkpoint_async *a)
{
    if (a == NULL)
        return TSR_OK;
    pthread_mutex_lock(&a->lock);
    tsr_status st = wait_locked(a);
    pthread_mutex_unlock(&a->lock);
    return st;
}

tsr_status tsr_checkpoint_async_start(tsr_checkpoint_async *a, const char *dir,
                                      const tsr_config *cfg, const tsr_checkpoint_state *state,
                                      const tsr_checkpoint_content *content,
                                      double *staged_seconds)
{
    uint64_t t0 = tsr_time_ns();
    pthread_mutex_lock(&a->lock);
    tsr_status previous = wait_locked(a);
    snprintf(a->dir, sizeof a->dir, "%s", dir);
    a->cfg = *cfg;
    a->state = *state;
    a->content = *content;
    memcpy(a->params, content->params, a->param_count * sizeof(float));
    memcpy(a->adam_m, content->adam_m, a->state_count * sizeof(float));
    memcpy(a->adam_v, content->adam_v, a->state_count * sizeof(float));
    if (a->frozen_count > 0)
        memcpy(a->frozen, content->frozen, a->frozen_count * sizeof(float));
    a->content.params = a->params;
    a->content.adam_m = a->adam_m;
    a->content.adam_v = a->adam_v;
    a->content.frozen = a->frozen;
    a->busy = true;
    a->pending = true;
    pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
    *staged_seconds = (double)(tsr_time_ns() - t0) * 1e-9;
    return previous;
}

void tsr_checkpoint_async_destroy(tsr_checkpoint_async *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    while (a->busy)
        pthread_cond_wait(&a->changed, &a->lock);
    a->quit = true;
    pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    MPI_Comm_free(&a->comm);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->changed);
    free_staging(a);
}
