/*
 * train_prediction.h - `tessera train --cluster`: the time model's
 * prediction of this run's iteration (time_model.h) logged at the start,
 * and beside the measured time at the end (with the ratio, also as a
 * "prediction" line of --metrics-file).
 */
#ifndef TSR_LAUNCHER_TRAIN_PREDICTION_H
#define TSR_LAUNCHER_TRAIN_PREDICTION_H

#include <stdio.h>

#include "arena.h"
#include "machine.h"
#include "sharding/grid.h"
#include "sharding/net.h"
#include "time_model.h"
#include "train/trainer.h"

typedef struct tsr_train_prediction {
    bool on;
    tsr_machine machine;
    tsr_time_inputs inputs;   /* this rank's stage */
    tsr_time_prediction time; /* each term the largest over the ranks' stages */
    double baseline_rss;      /* the process before the plan's memory (code, MPI, libraries) */
} tsr_train_prediction;

/* Checks --cluster before MPI starts (a configuration error, exit 2). */
tsr_status tsr_train_prediction_check(const tsr_config *cfg);

/* The prediction for this rank's stage, the slowest over the job (a
 * collective over the grid's world), logged once. Nothing without
 * --cluster. */
tsr_status tsr_train_prediction_make(const tsr_config *cfg, const tsr_net *net, tsr_grid *grid,
                                     tsr_train_prediction *out);

/* After the run, under expert parallelism (collectives over the grid;
 * nothing otherwise): how evenly the router spread the rows
 * (tsr_net_expert_load_measure), logged once and as an "expert_load" line
 * of --metrics-file. *busiest: the busiest rank of each exchange's rows
 * over an even routing's share (1 without expert parallelism). */
tsr_status tsr_train_expert_load_report(const tsr_net *net, tsr_grid *grid, FILE *metrics,
                                        double *busiest);

/* After the run: measured (the iterations after the first) against
 * predicted, and the predicted memory (the plan + the process before it)
 * against the peak RSS. With a measured expert load (not 1), also the
 * prediction at that load (a collective over the grid's world). */
tsr_status tsr_train_prediction_report(const tsr_train_prediction *p, const tsr_trainer *tr,
                                       tsr_grid *grid, size_t plan_bytes, double expert_load,
                                       FILE *metrics);

#endif /* TSR_LAUNCHER_TRAIN_PREDICTION_H */
