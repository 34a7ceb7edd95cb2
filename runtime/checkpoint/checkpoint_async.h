/*
 * checkpoint_async.h - --async-save: checkpoints written by a background
 * thread while training goes on.
 *
 * At the save's iteration boundary the state (parameters, Adam moments,
 * frozen tensors, the training position) is copied into staging buffers
 * allocated once; a background thread on every rank then runs the same
 * collective tsr_checkpoint_save on a duplicate of the communicator, so
 * the file, its checksums, the atomic rename and the pointer update are
 * those of a synchronous save. The next save (and the end of the run)
 * first waits for the one in flight and returns its status.
 *
 * Needs MPI_THREAD_MULTIPLE (two threads call MPI) and, because the main
 * thread keeps reading HDF5 token data while the background thread writes
 * the checkpoint, either data that is not HDF5 or a thread-safe libhdf5;
 * tsr_checkpoint_async_supported says which is missing.
 */
#ifndef TSR_RUNTIME_CHECKPOINT_ASYNC_H
#define TSR_RUNTIME_CHECKPOINT_ASYNC_H

#include <stdbool.h>

#include "checkpoint.h"

typedef struct tsr_checkpoint_async tsr_checkpoint_async;

/* TSR_ERR_UNSUPPORTED with the reason, or TSR_OK. */
tsr_status tsr_checkpoint_async_supported(int mpi_thread_level, bool data_uses_hdf5);

/* Collective over comm (duplicates it). Staging for content's arrays:
 * param_count, state_count (each moment) and frozen_count floats. */
tsr_status tsr_checkpoint_async_create(MPI_Comm comm, size_t param_count, size_t state_count,
                                       size_t frozen_count, tsr_checkpoint_async **out);

/* Waits for the save in flight, then stages this one and hands it to the
 * background thread. Returns the status of the save it waited for (TSR_OK
 * if none); *staged_seconds gets the time the caller was held. */
tsr_status tsr_checkpoint_async_start(tsr_checkpoint_async *a, const char *dir,
                                      const tsr_config *cfg, const tsr_checkpoint_state *state,
                                      const tsr_checkpoint_content *content,
                                      double *staged_seconds);

/* Waits for the save in flight; its status (TSR_OK if none). */
tsr_status tsr_checkpoint_async_wait(tsr_checkpoint_async *a);

/* Waits, stops the thread, frees. NULL is fine. */
void tsr_checkpoint_async_destroy(tsr_checkpoint_async *a);

#endif /* TSR_RUNTIME_CHECKPOINT_ASYNC_H */
