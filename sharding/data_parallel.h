/*
 * data_parallel.h - gradient and metric reduction across the
 * data-parallel group, as the trainer's hooks.
 *
 * Each rank's gradients arrive already scaled by 1 / (micro batches x
 * data-parallel size), so a sum across the group is the average.
 */
#ifndef TSR_SHARDING_DATA_PARALLEL_H
#define TSR_SHARDING_DATA_PARALLEL_H

#include "sharding/grid.h"
#include "train/trainer.h"

/* Fills the reduction hooks (ctx = the grid); leaves hooks->save alone. */
void tsr_dp_fill_hooks(tsr_grid *grid, tsr_trainer_hooks *hooks);

#endif /* TSR_SHARDING_DATA_PARALLEL_H */
