/*
 * stage.h - device memory seen from the MPI backend: is a pointer on the
 * GPU, and pinned host buffers to copy it through.
 *
 * stage_cuda.c implements it with the CUDA runtime when the CUDA backend is
 * built; stage_host.c answers "never device" otherwise, so mpi.c has no
 * #ifdefs. Called by mpi.c only.
 */
#ifndef TSR_COLLECTIVES_STAGE_H
#define TSR_COLLECTIVES_STAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "tessera/status.h"

/* True for memory only the GPU can address (not managed, not host). */
bool tsr_stage_is_device(const void *ptr);

/* Page-locked host memory (plain malloc without CUDA). */
tsr_status tsr_stage_host_alloc(size_t bytes, void **out);
void tsr_stage_host_free(void *ptr);

tsr_status tsr_stage_to_host(void *host, const void *device, size_t bytes);
tsr_status tsr_stage_to_device(void *device, const void *host, size_t bytes);

#endif /* TSR_COLLECTIVES_STAGE_H */
