/*
 * lr_schedule.h - the learning rate at an iteration: linear warmup from 0
 * to --lr over --lr-warmup-iters, then constant, linear or cosine decay to
 * --min-lr at --lr-decay-iters (default --train-iters), --min-lr after.
 * A pure function of (config, iteration): resuming needs no saved state.
 */
#ifndef TSR_RUNTIME_LR_SCHEDULE_H
#define TSR_RUNTIME_LR_SCHEDULE_H

#include <stdint.h>

#include "tessera/config.h"

/* iteration counts from 1 (the first optimizer step). */
double tsr_lr_at(const tsr_config *cfg, int64_t iteration);

#endif /* TSR_RUNTIME_LR_SCHEDULE_H */
