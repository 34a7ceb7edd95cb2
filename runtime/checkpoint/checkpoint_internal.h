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

/* If TSR_CHECKPOINT_TEST_PAUSE_AFTER=N is set, the N-th tensor written
 * blocks forever: the crash test kills the job at that moment, mid-save. */
void tsr_checkpoint_test_pause(void);

#endif /* TSR_RUNTIME_CHECKPOINT_INTERNAL_H */
