/*
 * lr_schedule.h - the learning rate at an iteration: linear warmup from 0
 * to --lr over --lr-warmup-iters, then constant, linear or cosine decay to
 * --min-lr at --lr-decay-iters (default --train-iters), --min-lr after.
 * A pure function of (config, step): the step is the iteration less the
 * fp16 iterations skipped for overflow (trainer.c), so resuming needs
 * only that count, which checkpoints hold.
 */
#ifndef TSR_RUNTIME_LR_SCHEDULE_H
#define TSR_RUNTIME_LR_SCHEDULE_H

#include <stdint.h>

#include "tessera/config.h"

/* step counts from 1 (the first weight update). */
double tsr_lr_at(const tsr_config *cfg, int64_t step);

#endif /* TSR_RUNTIME_LR_SCHEDULE_H */
