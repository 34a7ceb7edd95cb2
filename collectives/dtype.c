/*
 * dtype.c - element types, names, and the bf16 <-> fp32 conversions used by
 * the bf16 reductions. Pure functions; no MPI.
 */
#include <string.h>

#include "comm.h"

size_t tsr_comm_dtype_size(tsr_comm_dtype dtype)
{
    switch (dtype) {
    case TSR_COMM_FP32:
    case TSR_COMM_INT32:
        return 4;
    case TSR_COMM_BF16:
        return 2;
    case TSR_COMM_INT64:
    case TSR_COMM_FP64:
        return 8;
    default:
        return 0;
    }
}

const char *tsr_comm_dtype_name(tsr_comm_dtype dtype)
{
    static const char *const names[TSR_COMM_DTYPE_COUNT] = {"fp32", "bf16", "int32", "int64", "fp64"};
    if ((int)dtype < 0 || dtype >= TSR_COMM_DTYPE_COUNT)
        return "unknown";
    return names[dtype];
}

const char *tsr_comm_backend_name(tsr_comm_backend backend)
{
    return backend == TSR_COMM_BACKEND_NCCL ? "nccl" : "mpi";
}

const char *tsr_comm_kind_name(tsr_comm_kind kind)
{
    static const char *const names[TSR_COMM_KIND_COUNT] = {
        "allreduce", "reduce_scatter", "allgather", "broadcast", "reduce",
        "alltoall",  "alltoallv",      "send",      "recv",      "barrier",
        "split"};
    if ((int)kind < 0 || kind >= TSR_COMM_KIND_COUNT)
        return "unknown";
    return names[kind];
}

float tsr_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t tsr_float_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0)
        return (uint16_t)((bits >> 16) | 0x0040u); /* quiet NaN, sign kept */
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u); /* to nearest, ties to even */
    return (uint16_t)((bits + rounding) >> 16);
}

tsr_status tsr_comm_backend_decide(tsr_backend_choice choice, bool nccl_built, int world_size,
                                   const int *ranks_on_node, const int *gpus_on_node,
                                   tsr_comm_backend *out)
{
    *out = TSR_COMM_BACKEND_MPI;
    if (choice == TSR_BACKEND_MPI)
        return TSR_OK;
    if (world_size < 1 || ranks_on_node == NULL || gpus_on_node == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "backend choice needs every rank's GPU count");
    if (!nccl_built) {
        if (choice == TSR_BACKEND_NCCL)
            return tsr_error_set(TSR_ERR_UNSUPPORTED,
                                 "--backend nccl was asked for, but this tessera was built "
                                 "without NCCL; rebuild where CMake finds CUDA and NCCL, or use "
                                 "--backend mpi");
        return TSR_OK;
    }
    for (int r = 0; r < world_size; r++) {
        if (gpus_on_node[r] < 1 || ranks_on_node[r] > gpus_on_node[r]) {
            if (choice == TSR_BACKEND_NCCL)
                return tsr_error_set(TSR_ERR_UNSUPPORTED,
                                     "--backend nccl needs a GPU of its own for every rank, but "
                                     "rank %d shares a node of %d GPU(s) with %d rank(s); start "
                                     "fewer ranks per node or use --backend mpi",
                                     r, gpus_on_node[r], ranks_on_node[r]);
            return TSR_OK;
        }
    }
    *out = TSR_COMM_BACKEND_NCCL;
    return TSR_OK;
}
