/*
 * train_flags.h - the flag table of `tessera train` (Megatron-LM spellings)
 * and the one function that turns argv into a validated tsr_config.
 */
#ifndef TSR_LAUNCHER_TRAIN_FLAGS_H
#define TSR_LAUNCHER_TRAIN_FLAGS_H

#include "flags.h"
#include "tessera/config.h"

extern const tsr_flag_table tsr_train_flag_table;

/* Parses the train flags (presets first, so explicit flags win) and
 * validates them against world_size. Never prints, never communicates. */
tsr_status tsr_train_config_from_args(tsr_config *cfg, int argc, char **argv, int world_size);
/* The same without the validation (for `tessera plan`, which validates
 * each layout it tries). */
tsr_status tsr_train_config_parse(tsr_config *cfg, int argc, char **argv);

#endif /* TSR_LAUNCHER_TRAIN_FLAGS_H */
