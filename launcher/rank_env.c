/*
 * rank_env.c - rank discovery from launcher environment variables.
 */
#include "rank_env.h"

#include <errno.h>
#include <stdlib.h>

/* Returns the variable as a non-negative int, or -1 if unset or garbled. */
static int env_int(const char *name)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > 1 << 30)
        return -1;
    return (int)v;
}

tsr_rank_info tsr_rank_info_from_env(void)
{
    tsr_rank_info info = {0, 1, 0, 1, TSR_RANK_FROM_SINGLE};
    int rank = env_int("OMPI_COMM_WORLD_RANK"), size = env_int("OMPI_COMM_WORLD_SIZE");
    if (rank >= 0 && size > 0) {
        info.rank = rank;
        info.world_size = size;
        info.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
        info.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
        info.source = TSR_RANK_FROM_OMPI;
    } else if ((rank = env_int("PMIX_RANK")) >= 0 && (size = env_int("PMI_SIZE")) > 0) {
        info.rank = rank;
        info.world_size = size;
        info.local_rank = env_int("PMI_LOCAL_RANK");
        info.local_size = env_int("PMI_LOCAL_SIZE");
        info.source = TSR_RANK_FROM_PMIX;
    } else if ((rank = env_int("SLURM_PROCID")) >= 0 && (size = env_int("SLURM_NTASKS")) > 0 &&
               env_int("SLURM_STEP_ID") >= 0) {
        /* SLURM_STEP_ID distinguishes an srun step from the batch script
         * itself, where SLURM_PROCID=0 but this process is not a task */
        info.rank = rank;
        info.world_size = size;
        info.local_rank = env_int("SLURM_LOCALID");
        info.local_size = env_int("SLURM_NTASKS_PER_NODE");
        info.source = TSR_RANK_FROM_SLURM;
    }
    if (info.local_rank < 0)
        info.local_rank = 0;
    if (info.local_size <= 0)
        info.local_size = 1;
    return info;
}

const char *tsr_rank_source_name(tsr_rank_source source)
{
    switch (source) {
    case TSR_RANK_FROM_OMPI:
        return "mpirun";
    case TSR_RANK_FROM_PMIX:
        return "pmix";
    case TSR_RANK_FROM_SLURM:
        return "srun";
    case TSR_RANK_FROM_SINGLE:
        break;
    }
    return "single process";
}
