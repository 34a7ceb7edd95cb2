/*
 * cmd_version.c - `tessera version`: the version and every library this
 * build links, so a bug report carries the whole build in one paste.
 */
#include <cblas.h>
#include <hdf5.h>
#include <hwloc.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "cuda/cuda_device.h"
#include "rank_env.h"
#include "tessera/version.h"

int tsr_cmd_version(int argc, char **argv)
{
    if (tsr_args_want_help(argc, argv)) {
        puts("usage: tessera version\n\nprints the version and the libraries this build uses");
        return 0;
    }
    if (argc > 0) {
        tsr_error_set(TSR_ERR_INVALID_ARG, "'tessera version' takes no arguments (got '%s')",
                      argv[0]);
        return tsr_report_error_once(tsr_rank_info_from_env().rank, "version",
                                     TSR_ERR_INVALID_ARG);
    }
    char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi_version, &len);
    char *newline = strchr(mpi_version, '\n');
    if (newline)
        *newline = '\0';
    unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
    H5get_libversion(&h5_major, &h5_minor, &h5_release);
    unsigned hwloc_version = hwloc_get_api_version();

    printf("tessera %s\n", TSR_VERSION_STRING);
    printf("  compiler : %s\n", __VERSION__);
    printf("  MPI      : %s\n", mpi_version);
    printf("  HDF5     : %u.%u.%u (%s)\n", h5_major, h5_minor, h5_release,
           TSR_HDF5_IS_PARALLEL ? "parallel" : "serial");
    printf("  hwloc    : %u.%u.%u\n", hwloc_version >> 16, (hwloc_version >> 8) & 0xff,
           hwloc_version & 0xff);
    printf("  BLAS     : %s\n", openblas_get_config());
    printf("  oneDNN   : %s\n", TSR_HAVE_DNNL ? "built (--bf16 matrix products)"
                                                : "not found at build time (--bf16 refused)");
    if (tsr_cuda_built()) {
        int devices = 0;
        tsr_status st = tsr_cuda_device_count(&devices);
        printf("  CUDA     : backend built, %d device(s) visible%s%s\n", devices,
               st == TSR_OK ? "" : ": ", st == TSR_OK ? "" : tsr_last_error());
        printf("  NCCL     : %s\n", TSR_HAVE_NCCL ? "built" : "not found at build time");
    } else {
        printf("  CUDA     : not built (no nvcc found at configure time)\n");
    }
    return 0;
}
