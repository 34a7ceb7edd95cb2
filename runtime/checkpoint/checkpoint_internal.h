/*
 * checkpoint_internal.h - pieces shared by checkpoint writing and reading:
 * the metadata attributes and the fault-injection pause used by the
 * crash-during-save test.
 */
#ifndef TSR_RUNTIME_CHECKPOINT_INTERNAL_H
#define TSR_RUNTIME_CHECKPOINT_INTERNAL_H

#include <hdf5.h>

#include "checkpoint.h"

#define TSR_CHECKPOINT_LATEST_FILE "latest_checkpointed_iteration.txt"

/* Writes the root attributes: format version, training position, and the
 * configuration (model shape, optimizer, layout it was written from). */
void tsr_checkpoint_write_metadata(hid_t file, const tsr_config *cfg,
                                   const tsr_checkpoint_state *state);

/* Reads the training position and checks that the model shape recorded in
 * the file equals cfg's; TSR_ERR_FORMAT naming the first difference. */
tsr_status tsr_checkpoint_read_metadata(hid_t file, const char *path, const tsr_config *cfg,
                                        tsr_checkpoint_state *state);

/* String attribute `name` of obj into buf (NUL-terminated, cut to len - 1
 * bytes): 0 when read, -1 when absent or unreadable (buf is then ""). */
int tsr_checkpoint_read_string(hid_t obj, const char *name, char *buf, size_t len);
/* Whether the open file says it holds weights only (no optimizer/). */
bool tsr_checkpoint_file_weights_only(hid_t file);

/* A box of a tensor's global dataspace: rows x cols from (row, col). */
typedef struct tsr_checkpoint_box {
    int64_t row, col, rows, cols;
} tsr_checkpoint_box;

/* Elements [a, b) of t's local block (row-major, 0 <= a < b <= row_count x
 * col_count) as at most three boxes in global coordinates, in the same
 * row-major order: a partial first row, whole rows, a partial last row.
 * Returns the number of boxes. */
int tsr_checkpoint_range_boxes(const tsr_tensor_desc *t, int64_t a, int64_t b,
                               tsr_checkpoint_box boxes[3]);

/* The dataset's dimensions of t (rows x cols; vectors 1-D; experts'
 * stacked weights (experts, rows / experts, cols)); returns the rank. */
int tsr_checkpoint_global_dims(const tsr_tensor_desc *t, hsize_t dims[3]);
/* Selects elements [a, b) of t's block in `space` (the dataset's file
 * space: rank 1 for vectors, 2 for matrices) as the union of those boxes,
 * and makes *memspace a 1-D space of b - a floats to go with it. */
herr_t tsr_checkpoint_select_range(hid_t space, const tsr_tensor_desc *t, int64_t a, int64_t b,
                                   hid_t *memspace);

/* Calls fn(t, a, b, offset_in_array) for each piece of t's block this rank
 * transfers: the whole block when shard->ranges is NULL, otherwise its
 * intersection with each owned range. offset_in_array is where element a
 * sits in the flat array: by flat index, or packed by state_offset when
 * `packed` (the moments of a sharded state). Stops at the first failure. */
typedef herr_t (*tsr_checkpoint_piece_fn)(void *ctx, const tsr_tensor_desc *t, int64_t a,
                                          int64_t b, size_t offset_in_array);
herr_t tsr_checkpoint_for_pieces(const tsr_tensor_desc *t, const tsr_param_shard *shard,
                                 bool packed, tsr_checkpoint_piece_fn fn, void *ctx);

/* A tsr_checkpoint_piece_fn context that moves each piece between the
 * dataset and a flat array: written from `from` when it is not NULL,
 * otherwise read into `into`. */
typedef struct tsr_checkpoint_transfer {
    hid_t set, space;
    const float *from;
    float *into;
    int error_number; /* errno right after a failed transfer (ENOSPC, EIO), or 0 */
} tsr_checkpoint_transfer;

herr_t tsr_checkpoint_transfer_piece(void *ctx, const tsr_tensor_desc *t, int64_t a, int64_t b,
                                     size_t offset_in_array);

/* Collective over comm, on a closed checkpoint file at path: stores the
 * CRC-32C of every tensor dataset as its attribute "crc32c"
 * (checkpoint_checksum.c says how it is computed). */
tsr_status tsr_checkpoint_write_checksums(const char *path, MPI_Comm comm);

/* Collective over comm, on an open checkpoint: TSR_ERR_FORMAT naming the
 * first tensor (in name order) whose data does not match its checksum, or
 * has none. Every rank returns the same status. */
tsr_status tsr_checkpoint_verify_checksums(hid_t file, const char *path, MPI_Comm comm);

/* The program's watch (tsr_checkpoint_set_watch), forwarded. */
void tsr_checkpoint_watch_begin(MPI_Comm comm, const char *what, const char *path);
void tsr_checkpoint_watch_step(void);
void tsr_checkpoint_watch_end(void);

/* If TSR_CHECKPOINT_TEST_PAUSE_AFTER=N is set, the N-th tensor written
 * blocks forever: the crash test kills the job at that moment, mid-save.
 * With TSR_CHECKPOINT_TEST_STOP_RANK=R only world rank R stops there, by
 * SIGSTOP (the whole process, as a stuck node): the watch test. */
void tsr_checkpoint_test_pause(void);

#endif /* TSR_RUNTIME_CHECKPOINT_INTERNAL_H */
