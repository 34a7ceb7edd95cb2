/*
 * mpi_types.c - the MPI backend's element types and reduction ops.
 *
 * bf16 travels as 16-bit words; its reductions are user MPI ops that widen
 * each element to fp32, combine, and round back (what NCCL does per step).
 */
#include <stdint.h>

#include "comm_internal.h"

static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] = tsr_float_to_bf16(tsr_bf16_to_float(a[i]) + tsr_bf16_to_float(b[i]));
}

static void bf16_max(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) {
        float x = tsr_bf16_to_float(a[i]), y = tsr_bf16_to_float(b[i]);
        if (x > y || x != x) /* NaN propagates, as fmaxf does not */
            b[i] = a[i];
    }
}

tsr_status tsr_comm_mpi_types_create(tsr_comm_shared *shared)
{
    shared->bf16_type = MPI_UINT16_T;
    if (MPI_Op_create(bf16_sum, 1, &shared->bf16_sum) != MPI_SUCCESS ||
        MPI_Op_create(bf16_max, 1, &shared->bf16_max) != MPI_SUCCESS)
        return tsr_error_set(TSR_ERR_COMM, "MPI_Op_create for the bf16 reductions failed");
    return TSR_OK;
}

void tsr_comm_mpi_types_free(tsr_comm_shared *shared)
{
    if (shared->bf16_sum != MPI_OP_NULL)
        MPI_Op_free(&shared->bf16_sum);
    if (shared->bf16_max != MPI_OP_NULL)
        MPI_Op_free(&shared->bf16_max);
}

MPI_Datatype tsr_comm_mpi_type(const tsr_comm *comm, tsr_comm_dtype dtype)
{
    switch (dtype) {
    case TSR_COMM_FP32:
        return MPI_FLOAT;
    case TSR_COMM_BF16:
        return comm->shared->bf16_type;
    case TSR_COMM_INT32:
        return MPI_INT32_T;
    case TSR_COMM_INT64:
        return MPI_INT64_T;
    case TSR_COMM_FP64:
        return MPI_DOUBLE;
    default:
        return MPI_DATATYPE_NULL;
    }
}

MPI_Op tsr_comm_mpi_op(const tsr_comm *comm, tsr_comm_dtype dtype, tsr_comm_op op)
{
    if (dtype == TSR_COMM_BF16)
        return op == TSR_COMM_SUM ? comm->shared->bf16_sum : comm->shared->bf16_max;
    return op == TSR_COMM_SUM ? MPI_SUM : MPI_MAX;
}
