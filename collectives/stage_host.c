/*
 * stage_host.c - staging without the CUDA backend: no pointer is device
 * memory, so the MPI backend never stages. Host buffers are plain malloc.
 */
#include <stdlib.h>
#include <string.h>

#include "stage.h"

bool tsr_stage_is_device(const void *ptr)
{
    (void)ptr;
    return false;
}

tsr_status tsr_stage_host_alloc(size_t bytes, void **out)
{
    *out = malloc(bytes > 0 ? bytes : 1);
    if (*out == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate %zu staging bytes", bytes);
    return TSR_OK;
}

void tsr_stage_host_free(void *ptr)
{
    free(ptr);
}

tsr_status tsr_stage_to_host(void *host, const void *device, size_t bytes)
{
    memcpy(host, device, bytes);
    return TSR_OK;
}

tsr_status tsr_stage_to_device(void *device, const void *host, size_t bytes)
{
    memcpy(device, host, bytes);
    return TSR_OK;
}
