/*
 * cuda_device.cu - GPU discovery through the CUDA runtime.
 *
 * A machine with the toolkit but no GPU (or no driver) is normal for a
 * build host: cudaGetDeviceCount then fails with cudaErrorNoDevice or
 * cudaErrorInsufficientDriver, which we report as zero devices.
 */
#include "cuda_device.h"

#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int tsr_cuda_built(void)
{
    return 1;
}

extern "C" tsr_status tsr_cuda_device_count(int *count)
{
    *count = 0;
    cudaError_t err = cudaGetDeviceCount(count);
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
        err == cudaErrorInitializationError) {
        (void)cudaGetLastError(); /* clear the sticky error */
        *count = 0;
        return TSR_OK;
    }
    if (err != cudaSuccess) {
        *count = 0;
        return tsr_error_set(TSR_ERR_INTERNAL, "cudaGetDeviceCount failed: %s",
                             cudaGetErrorString(err));
    }
    return TSR_OK;
}

extern "C" tsr_status tsr_cuda_device_describe(int index, char *name, size_t name_len,
                                               char *pci_bus_id, size_t pci_len)
{
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "no CUDA device %d: %s", index,
                             cudaGetErrorString(err));
    snprintf(name, name_len, "%s", prop.name);
    err = cudaDeviceGetPCIBusId(pci_bus_id, (int)pci_len, index);
    if (err != cudaSuccess)
        return tsr_error_set(TSR_ERR_INTERNAL, "cudaDeviceGetPCIBusId(%d) failed: %s", index,
                             cudaGetErrorString(err));
    return TSR_OK;
}
