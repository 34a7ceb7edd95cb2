/*
 * cuda_absent.c - the answers of a build without the CUDA backend (no nvcc
 * found at configure time): no devices, and a clear reason when asked for
 * one.
 */
#include "cuda_device.h"

int tsr_cuda_built(void)
{
    return 0;
}

tsr_status tsr_cuda_device_count(int *count)
{
    *count = 0;
    return TSR_OK;
}

tsr_status tsr_cuda_device_describe(int index, char *name, size_t name_len, char *pci_bus_id,
                                    size_t pci_len)
{
    (void)name;
    (void)name_len;
    (void)pci_bus_id;
    (void)pci_len;
    return tsr_error_set(TSR_ERR_UNSUPPORTED,
                         "GPU %d requested, but this tessera was built without CUDA; "
                         "rebuild on a machine where CMake finds nvcc",
                         index);
}
