/*
 * rank_env.h - where this process sits in the job, read from the
 * environment that mpirun, srun or PMIx set, before MPI is initialised.
 *
 * Knowing rank and world size before MPI_Init lets the launcher validate a
 * configuration and print one error (from rank 0) without communicating.
 */
#ifndef TSR_LAUNCHER_RANK_ENV_H
#define TSR_LAUNCHER_RANK_ENV_H

typedef enum tsr_rank_source {
    TSR_RANK_FROM_SINGLE = 0, /* no launcher: one process */
    TSR_RANK_FROM_OMPI,       /* mpirun (Open MPI) */
    TSR_RANK_FROM_PMIX,       /* a PMIx launcher that set PMIX_RANK */
    TSR_RANK_FROM_SLURM       /* srun */
} tsr_rank_source;

typedef struct tsr_rank_info {
    int rank;
    int world_size;
    int local_rank;
    int local_size;
    tsr_rank_source source;
} tsr_rank_info;

/* Reads the environment in order of trust: Open MPI, then PMIx, then Slurm
 * (under mpirun inside an allocation every rank sees SLURM_PROCID=0, so
 * Slurm's variables only count when no MPI launcher set its own). */
tsr_rank_info tsr_rank_info_from_env(void);

const char *tsr_rank_source_name(tsr_rank_source source);

#endif /* TSR_LAUNCHER_RANK_ENV_H */
