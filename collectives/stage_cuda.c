/*
 * stage_cuda.c - staging through the CUDA runtime: device pointers are
 * recognised with cudaPointerGetAttributes and copied through page-locked
 * host buffers (cudaMallocHost), which is what lets ranks that share one
 * GPU (and so cannot use NCCL) still communicate device buffers over MPI.
 */
#include <cuda_runtime.h>

#include "stage.h"

bool tsr_stage_is_device(const void *ptr)
{
    if (ptr == NULL)
        return false;
    struct cudaPointerAttributes attr;
    cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* plain host memory on old drivers: clear it */
        return false;
    }
    return attr.type == cudaMemoryTypeDevice;
}

tsr_status tsr_stage_host_alloc(size_t bytes, void **out)
{
    *out = NULL;
    cudaError_t err = cudaMallocHost(out, bytes > 0 ? bytes : 1);
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cudaMallocHost(%zu) for MPI staging: %s",
                             bytes, cudaGetErrorString(err));
    return TSR_OK;
}

void tsr_stage_host_free(void *ptr)
{
    if (ptr != NULL)
        cudaFreeHost(ptr);
}

tsr_status tsr_stage_to_host(void *host, const void *device, size_t bytes)
{
    cudaError_t err = cudaMemcpy(host, device, bytes, cudaMemcpyDefault);
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_COMM, "staging %zu bytes device->host: %s", bytes,
                             cudaGetErrorString(err));
    return TSR_OK;
}

tsr_status tsr_stage_to_device(void *device, const void *host, size_t bytes)
{
    cudaError_t err = cudaMemcpy(device, host, bytes, cudaMemcpyDefault);
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_COMM, "staging %zu bytes host->device: %s", bytes,
                             cudaGetErrorString(err));
    return TSR_OK;
}
