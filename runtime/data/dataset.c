/*
 * dataset.c - opens the dataset --data-path names.
 *
 * "synthetic:..." goes to the built-in tasks (synthetic.c); anything else
 * is a token file dataset: one or more .bin/.idx prefixes or HDF5 token
 * files, optionally weighted (blend.c). Called by `tessera train` before
 * MPI starts, so every error here is a configuration error printed once.
 */
#include <string.h>

#include "blend.h"
#include "dataset.h"

/* Defined in synthetic.c, which owns the built-in tasks. */
tsr_status tsr_dataset_open_synthetic(const tsr_config *cfg, tsr_dataset **out);

tsr_status tsr_dataset_open(const tsr_config *cfg, tsr_dataset **out)
{
    *out = NULL;
    if (cfg->data_path == NULL || cfg->data_path[0] == '\0')
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--data-path is empty; give a PREFIX of .bin/.idx files, an .h5 "
                             "token file or synthetic:addition");
    tsr_status st = strncmp(cfg->data_path, "synthetic:", 10) == 0
                        ? tsr_dataset_open_synthetic(cfg, out)
                        : tsr_file_dataset_open(cfg, out);
    if (st == TSR_OK && (st = tsr_dataset_check_attention(*out, cfg)) != TSR_OK) {
        tsr_dataset_close(*out);
        *out = NULL;
    }
    return st;
}
