/*
 * nccl_absent.c - a build without NCCL: the backend rule never picks it
 * (tsr_comm_nccl_built() is false), and asking for it by name is refused
 * by tsr_comm_backend_decide() before anything here could be reached.
 */
#include "comm_internal.h"

bool tsr_comm_nccl_built(void)
{
    return false;
}

tsr_status tsr_comm_nccl_init_world(tsr_comm *world)
{
    (void)world;
    return tsr_error_set(TSR_ERR_UNSUPPORTED, "this tessera was built without NCCL");
}

void tsr_comm_set_stream(tsr_comm *comm, void *cuda_stream)
{
    (void)comm;
    (void)cuda_stream;
}

const tsr_comm_backend_ops *const tsr_comm_nccl_ops = NULL;
