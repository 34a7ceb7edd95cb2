/*
 * checkpoint_read.c - loading a checkpoint into this run's layout.
 *
 * Each rank reads its own block of every tensor at global shape, so the
 * layout that wrote the file does not matter. Parameters are read whole;
 * the moments of a sharded optimizer state only for the owned ranges. Problems found before any
 * tensor is read (missing pointer file, not HDF5, other model) are
 * reported the same way on every rank, as TSR_ERR_FORMAT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"

static tsr_status read_latest(const char *dir, int64_t *iteration)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/%s", dir, TSR_CHECKPOINT_LATEST_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "--load %s: no checkpoint there (%s: %s); give the directory a "
                             "previous run passed to --save",
                             dir, path, strerror(errno));
    long long it = -1;
    int fields = fscanf(f, "%lld", &it);
    fclose(f);
    if (fields != 1 || it < 0)
        return tsr_error_set(TSR_ERR_FORMAT, "%s does not hold an iteration number", path);
    *iteration = it;
    return TSR_OK;
}


/* shard NULL: the whole block; otherwise the owned pieces of it, into a
 * packed moment array. */
static tsr_status read_block(hid_t group, const tsr_tensor_desc *t, float *base,
                             const tsr_param_shard *shard, const char *path,
                             const char *group_name)
{
    hid_t set = H5Dopen2(group, t->name, H5P_DEFAULT);
    if (set < 0)
        return tsr_error_set(TSR_ERR_FORMAT, "checkpoint %s has no tensor %s/%s", path,
                             group_name, t->name);
    hid_t space = H5Dget_space(set);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[2] = {0, 1};
    H5Sget_simple_extent_dims(space, dims, NULL);
    int want_rank = t->cols == 1 ? 1 : 2;
    tsr_status st = TSR_OK;
    if (rank != want_rank || dims[0] != (hsize_t)t->rows ||
        (rank == 2 && dims[1] != (hsize_t)t->cols)) {
        st = tsr_error_set(TSR_ERR_FORMAT,
                           "checkpoint %s: tensor %s/%s has shape %llux%llu but this model "
                           "needs %lldx%lld",
                           path, group_name, t->name, (unsigned long long)dims[0],
                           (unsigned long long)(rank == 2 ? dims[1] : 1), (long long)t->rows,
                           (long long)t->cols);
    } else {
        tsr_checkpoint_transfer r = {set, space, NULL, base};
        if (tsr_checkpoint_for_pieces(t, shard, shard != NULL, tsr_checkpoint_transfer_piece,
                                      &r) < 0)
            st = tsr_error_set(TSR_ERR_FORMAT, "checkpoint %s: cannot read %s/%s (truncated?)",
                               path, group_name, t->name);
    }
    H5Sclose(space);
    H5Dclose(set);
    return st;
}

static tsr_status read_tensors(hid_t file, const char *group_name,
                               const tsr_checkpoint_content *c, float *base,
                               const tsr_param_shard *shard, const char *path)
{
    hid_t group = H5Gopen2(file, group_name, H5P_DEFAULT);
    if (group < 0)
        return tsr_error_set(TSR_ERR_FORMAT, "checkpoint %s has no group %s", path, group_name);
    /* the model group holds the frozen tensors too, read whole into their
     * own array; the optimizer groups have none of them */
    bool moments = base != c->params;
    tsr_status st = TSR_OK;
    for (size_t i = 0; i < c->tensor_count && st == TSR_OK; i++) {
        const tsr_tensor_desc *t = &c->tensors[i];
        if (t->frozen && !moments)
            st = read_block(group, t, c->frozen, NULL, path, group_name);
        else if (!t->frozen)
            st = read_block(group, t, base, shard, path, group_name);
    }
    H5Gclose(group);
    return st;
}

static tsr_status read_file(const char *path, const tsr_config *cfg, tsr_checkpoint_state *state,
                            const tsr_checkpoint_content *content, MPI_Comm comm)
{
    if (H5Fis_hdf5(path) <= 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s is missing or not an HDF5 file (truncated or "
                             "overwritten?); point --load at a directory written by --save",
                             path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (file < 0)
        return tsr_error_set(TSR_ERR_FORMAT, "cannot open checkpoint %s (truncated?)", path);
    tsr_status st = tsr_checkpoint_read_metadata(file, path, cfg, state);
    const tsr_param_shard *owned = content->shard.sharded_state ? &content->shard : NULL;
    if (st == TSR_OK)
        st = read_tensors(file, "model", content, content->params, NULL, path);
    if (st == TSR_OK)
        st = read_tensors(file, "optimizer/exp_avg", content, content->adam_m, owned, path);
    if (st == TSR_OK)
        st = read_tensors(file, "optimizer/exp_avg_sq", content, content->adam_v, owned, path);
    H5Fclose(file);
    return st;
}

tsr_status tsr_checkpoint_load(const char *dir, const tsr_config *cfg,
                               tsr_checkpoint_state *state,
                               const tsr_checkpoint_content *content, MPI_Comm comm)
{
    int64_t iteration = 0;
    tsr_status st = read_latest(dir, &iteration);
    char path[4096];
    if (st == TSR_OK) {
        tsr_checkpoint_path(dir, iteration, path, sizeof path);
        H5E_BEGIN_TRY
        {
            st = read_file(path, cfg, state, content, comm);
        }
        H5E_END_TRY;
    }
    int failed = st != TSR_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    if (any_failed && st == TSR_OK)
        return tsr_error_set(TSR_ERR_FORMAT, "another rank could not read checkpoint %s", path);
    if (st == TSR_OK && state->iteration != iteration)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s/%s names iteration %lld but the file holds iteration %lld",
                             dir, TSR_CHECKPOINT_LATEST_FILE, (long long)iteration,
                             (long long)state->iteration);
    return st;
}
