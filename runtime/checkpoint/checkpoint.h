/*
 * checkpoint.h - HDF5 checkpoints that load into any parallel layout.
 *
 * A checkpoint is one HDF5 file, DIR/iter_NNNNNNN.h5, holding every
 * parameter and its Adam moments at their GLOBAL shape, the training
 * position and the run's configuration (docs/checkpoint-format.md). Every
 * rank writes and reads only its own block of each tensor, through
 * parallel HDF5 over MPI-IO: dataset creation is collective, data transfer
 * independent. Since the file never stores a layout, a checkpoint written
 * by one layout loads into any other.
 *
 * Saving is atomic: the file is written as iter_NNNNNNN.h5.tmp, renamed
 * when complete, and only then is latest_checkpointed_iteration.txt
 * replaced (write + rename), so a crash mid-save leaves the previous
 * checkpoint and the pointer to it intact.
 */
#ifndef TSR_RUNTIME_CHECKPOINT_H
#define TSR_RUNTIME_CHECKPOINT_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "tessera/config.h"
#include "tessera/status.h"
#include "train/model.h"
#include "train/optimizer.h"

/* Version 2 adds a CRC-32C beside every tensor; version 1 files (no
 * checksums) still load, unverified. */
#define TSR_CHECKPOINT_FORMAT_VERSION 2
#define TSR_CHECKPOINT_FIRST_CHECKSUMMED_VERSION 2

/* The training position: everything besides tensors that resuming needs.
 * The RNG is counter-based, so (seed, iteration, consumed samples) is its
 * whole state; the LR schedule is a function of the iteration less the
 * overflowed fp16 iterations. */
typedef struct tsr_checkpoint_state {
    int64_t iteration;
    int64_t consumed_samples;
    int64_t adam_step;
    int64_t nan_iterations;
    int64_t seed;
    int64_t format_version; /* of the file loaded; saving writes the current one */
    bool weights_only;      /* of the file loaded: it holds no optimizer state */
    bool adapters;          /* of the file loaded: it holds LoRA adapters; without them
                             * a LoRA run's adapters keep their initial values */
    /* a LoRA run's base: saving writes it as lora_base (empty: the run's
     * --pretrained-checkpoint, else --load); loading a LoRA checkpoint
     * reads its lora_base here */
    char lora_base[512];
    /* fp16's dynamic loss scaler (0: none; written when > 0, read when the
     * file has it): the scale and its growth and hysteresis trackers */
    double loss_scale;
    int64_t loss_scale_growth, loss_scale_hysteresis;
    /* fp16 iterations skipped for overflow, which did not step the LR
     * schedule (written when > 0, 0 when the file lacks it) */
    int64_t overflow_iterations;
} tsr_checkpoint_state;

/* What a checkpoint holds: the model's tensor table and three flat arrays
 * indexed by it (parameters, Adam first and second moments).
 *
 * shard says which data-parallel share of the flat buffer this rank owns
 * (ranges NULL: all of it). A rank writes, of each block the model marks
 * as its to write, only the elements in its owned ranges, so the
 * data-parallel replicas split the writing and no element is written
 * twice. With shard.sharded_state (distributed optimizer) adam_m/adam_v
 * hold the owned ranges only, packed as the ranges' state_offset says; the
 * moments are then also read for the owned ranges only, while parameters
 * are always read whole. On disk nothing changes: every tensor is at its
 * global shape, whatever the layout that wrote it. Frozen tensors are
 * stored under model/ only (no optimizer state), written whole by their
 * block's writer and read whole.
 *
 * adam_m and adam_v NULL: saving writes the weights only (no optimizer/
 * groups; the file's weights_only attribute says so, as `tessera convert`
 * writes it), and loading reads the weights only (fine-tuning,
 * --no-load-optim). Loading moments from a weights-only file is refused. */
typedef struct tsr_checkpoint_content {
    const tsr_tensor_desc *tensors;
    size_t tensor_count;
    float *params, *adam_m, *adam_v;
    tsr_param_shard shard;
    float *frozen; /* the frozen tensors' array (tensors[i].frozen); they have no moments */
} tsr_checkpoint_content;

/* Collective over comm. Writes DIR/iter_NNNNNNN.h5 and updates
 * DIR/latest_checkpointed_iteration.txt. */
tsr_status tsr_checkpoint_save(const char *dir, const tsr_config *cfg,
                               const tsr_checkpoint_state *state,
                               const tsr_checkpoint_content *content, MPI_Comm comm);

/* Collective over comm. Reads (from dir, which the user gave as flag -
 * "--load", say - for the messages) the iteration cfg->ckpt_step, or (-1) the
 * one named by DIR/latest_checkpointed_iteration.txt, after checking every
 * tensor's checksum (format version 2 on). Missing, truncated or mismatched
 * checkpoints give TSR_ERR_FORMAT (or TSR_ERR_INVALID_ARG for a missing
 * directory) with a message naming the file and what differs. */
tsr_status tsr_checkpoint_load(const char *flag, const char *dir, const tsr_config *cfg,
                               tsr_checkpoint_state *state,
                               const tsr_checkpoint_content *content, MPI_Comm comm);

/* Iterations and sample counts a checkpoint may hold: larger values are
 * damage, not training (2^53: exact in a double). */
#define TSR_CHECKPOINT_COUNTER_MAX ((int64_t)1 << 53)

/* Whether DIR holds a checkpoint at all (its latest-iteration file), for
 * choosing between --load and --pretrained-checkpoint; not whether it is
 * sound (tsr_checkpoint_resolve, tsr_checkpoint_load say that). */
bool tsr_checkpoint_exists(const char *dir);

/* Not collective, no HDF5: the iteration --load DIR would read (step >= 0:
 * that one, checked to exist; -1: the one latest_checkpointed_iteration.txt
 * names). Lets a run find a bad --load before it starts MPI or allocates;
 * flag ("--load", "--pretrained-checkpoint") names the directory in them;
 * TSR_ERR_INVALID_ARG / TSR_ERR_FORMAT naming the problem and the
 * iterations the directory holds. */
tsr_status tsr_checkpoint_resolve(const char *flag, const char *dir, int64_t step,
                                  int64_t *iteration);

/* Watching a save or load for a rank that stops making progress (HDF5's
 * MPI calls are outside the collectives' watchdog): begin and end are
 * collective over the save's or load's communicator, step marks progress
 * (a tensor written, read or checksummed). Set once, by the program; NULL
 * members and a NULL watch are fine. */
typedef struct tsr_checkpoint_watch {
    void *ctx;
    void (*begin)(void *ctx, MPI_Comm comm, const char *what, const char *path);
    void (*step)(void *ctx);
    void (*end)(void *ctx);
} tsr_checkpoint_watch;

void tsr_checkpoint_set_watch(const tsr_checkpoint_watch *watch);

/* Not collective, no MPI: the model checkpoint file path was written for
 * (shape, architecture, epsilon, rotary base) into cfg's model fields,
 * with the real vocabulary (the embedding's rows) as cfg->vocab_size and
 * the learned positions' rows (0 without) as max_position_embeddings, the
 * --data-path, --seed and attention flags it trained with, its LoRA
 * adapters (lora_*) if any; for
 * programs that act on a checkpoint without model flags (tessera
 * convert). TSR_ERR_FORMAT when the file is not a readable checkpoint. */
tsr_status tsr_checkpoint_read_model(const char *path, tsr_config *cfg);

/* Path of the checkpoint file for an iteration. */
void tsr_checkpoint_path(const char *dir, int64_t iteration, char *buf, size_t len);

#endif /* TSR_RUNTIME_CHECKPOINT_H */
