/*
 * cuda_device.h - what the CUDA backend can see of the machine's GPUs.
 *
 * Compiled from cuda_device.cu when the build found nvcc (whether or not a
 * GPU is present), and from cuda_absent.c otherwise, so callers never need
 * #ifdefs: an absent backend answers TSR_ERR_UNSUPPORTED.
 */
#ifndef TSR_RUNTIME_CUDA_DEVICE_H
#define TSR_RUNTIME_CUDA_DEVICE_H

#include <stddef.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when this binary contains the CUDA backend. */
int tsr_cuda_built(void);

/* Number of visible CUDA devices; 0 (and TSR_OK) when the driver reports
 * none or is missing, which is a normal state for a CPU-only machine. */
tsr_status tsr_cuda_device_count(int *count);

/* Name and PCI bus id ("0000:3b:00.0") of device `index`. */
tsr_status tsr_cuda_device_describe(int index, char *name, size_t name_len, char *pci_bus_id,
                                    size_t pci_len);

#ifdef __cplusplus
}
#endif

#endif /* TSR_RUNTIME_CUDA_DEVICE_H */
