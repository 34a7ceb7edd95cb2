/*
 * train_checkpoint.h - `tessera train`'s side of checkpoints: the trainer's
 * save hook (synchronous, or --async-save through checkpoint_async.h) and
 * the load at start.
 */
#ifndef TSR_LAUNCHER_TRAIN_CHECKPOINT_H
#define TSR_LAUNCHER_TRAIN_CHECKPOINT_H

#include "checkpoint/checkpoint_async.h"
#include "sharding/grid.h"
#include "train/trainer.h"

/* Everything one training run holds, for the checkpoint hook. */
typedef struct train_run {
    const tsr_config *cfg;
    tsr_grid *grid;
    tsr_model model;
    tsr_checkpoint_async *async; /* --async-save; NULL: saves block */
    char lora_base[512];         /* a LoRA run's base, kept from its load for its saves */
} train_run;

/* The trainer's save hook (ctx: the train_run). */
tsr_status tsr_train_save_checkpoint(void *ctx, const tsr_trainer *tr);

/* What a run loads: --load when it holds a checkpoint - a run resumes its
 * own progress, fine-tuning runs too - else --pretrained-checkpoint, whose
 * weights start a fine-tuning run (Megatron's rule); --finetune makes any
 * load one. */
typedef struct tsr_train_load_source {
    const char *dir;  /* NULL: nothing to load */
    const char *flag; /* the flag that gave dir, for messages */
    bool finetune;
} tsr_train_load_source;
tsr_train_load_source tsr_train_load_source_of(const tsr_config *cfg);

/* Reads the checkpoint of tsr_train_load_source_of into the trainer; as a
 * fine-tuning start or with --no-load-optim, resets what those leave
 * fresh. */
tsr_status tsr_train_load_checkpoint(train_run *run, tsr_trainer *tr);

/* --async-save: starts the background writer (collective), after checking
 * that this MPI (thread level) and the data allow it. */
tsr_status tsr_train_async_begin(train_run *run, const tsr_trainer *tr, int mpi_thread_level,
                                 bool data_reads_hdf5);

/* Waits for the last background save (its failure handled as
 * --save-failure says) and stops the writer. */
tsr_status tsr_train_async_end(train_run *run);

#endif /* TSR_LAUNCHER_TRAIN_CHECKPOINT_H */
