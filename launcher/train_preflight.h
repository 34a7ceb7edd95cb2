/*
 * train_preflight.h - what `tessera train` checks before MPI starts or
 * anything is allocated, so that a run fails in its first millisecond
 * instead of at its first save (or after hours of training).
 */
#ifndef TSR_LAUNCHER_TRAIN_PREFLIGHT_H
#define TSR_LAUNCHER_TRAIN_PREFLIGHT_H

#include <stddef.h>

#include "tessera/config.h"
#include "tessera/status.h"

/* Paths and settings: --save (created with its parents, as Megatron does,
 * and checked writable), --metrics-file (its directory likewise; the file
 * can be written), --load and
 * --ckpt-step (a checkpoint is there), --split (well formed, whatever the
 * data). TSR_ERR_INVALID_ARG / TSR_ERR_FORMAT naming the problem. */
tsr_status tsr_train_preflight(const tsr_config *cfg);

/* Refuses a memory plan this node cannot hold: plan_bytes per rank times
 * the ranks on this node, against the node's physical memory. */
tsr_status tsr_train_check_memory(size_t plan_bytes, int ranks_on_node);

#endif /* TSR_LAUNCHER_TRAIN_PREFLIGHT_H */
