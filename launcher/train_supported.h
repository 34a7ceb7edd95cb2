/*
 * train_supported.h - what this build can train, checked from the flags
 * alone, by `tessera train` before MPI starts and by `tessera slurm` before
 * it writes a script (so that a script that cannot run is never written).
 */
#ifndef TSR_LAUNCHER_TRAIN_SUPPORTED_H
#define TSR_LAUNCHER_TRAIN_SUPPORTED_H

#include "tessera/config.h"
#include "tessera/status.h"

/* TSR_ERR_INVALID_ARG naming the flag to drop or change, for a job of
 * `world` ranks. */
tsr_status tsr_train_check_supported(const tsr_config *cfg, int world);

#endif /* TSR_LAUNCHER_TRAIN_SUPPORTED_H */
