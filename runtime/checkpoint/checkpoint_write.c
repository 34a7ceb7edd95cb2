/*
 * checkpoint_write.c - atomic, parallel checkpoint writing (checkpoint.h).
 *
 * Every rank opens the temporary file with the MPI-IO driver; all ranks
 * create every dataset (HDF5 requires metadata changes to be collective),
 * then each writes its own block of each tensor independently (under data
 * parallelism only its owned share of that block, checkpoint_select.c).
 * After the collective close, rank 0 renames the file and replaces the
 * pointer file.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "tessera/log.h"

void tsr_checkpoint_path(const char *dir, int64_t iteration, char *buf, size_t len)
{
    snprintf(buf, len, "%.4000s/iter_%07lld.h5", dir, (long long)iteration);
}


/* write_data false: only the collective creation (another tensor failed
 * on this rank, and every rank must still create every dataset, or the
 * others would wait in HDF5's collective metadata calls forever). */
static tsr_status write_block(hid_t group, const tsr_tensor_desc *t,
                              const tsr_checkpoint_content *c, const float *base, bool packed,
                              const char *path, bool write_data)
{
    hsize_t global[3];
    int rank = tsr_checkpoint_global_dims(t, global);
    hid_t space = H5Screate_simple(rank, global, NULL);
    /* a tensor held as two blocks (SwiGLU's gate and up rows under tensor
     * parallelism) is described twice: the second block opens the dataset */
    hid_t set = H5Lexists(group, t->name, H5P_DEFAULT) > 0
                    ? H5Dopen2(group, t->name, H5P_DEFAULT)
                    : H5Dcreate2(group, t->name, H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT);
    herr_t err = set < 0 ? -1 : 0;
    int error_number = 0;
    if (err == 0 && t->writer && write_data) {
        /* a frozen tensor lies outside the flat buffer the shards cut */
        tsr_checkpoint_transfer w = {set, space, t->frozen ? c->frozen : base, NULL, 0};
        err = tsr_checkpoint_for_pieces(t, t->frozen ? NULL : &c->shard, packed && !t->frozen,
                                        tsr_checkpoint_transfer_piece, &w);
        error_number = w.error_number;
    }
    if (set >= 0)
        H5Dclose(set);
    H5Sclose(space);
    if (err < 0)
        return tsr_error_set(TSR_ERR_IO, "cannot write tensor %s to %s: %s (errno %d)", t->name,
                             path, error_number != 0 ? strerror(error_number) : "HDF5 failed",
                             error_number);
    tsr_checkpoint_watch_step();
    tsr_checkpoint_test_pause();
    return TSR_OK;
}

/* packed: base is a moment array of a sharded optimizer state; moments:
 * an optimizer group, which frozen tensors are not in. st: this rank's
 * status so far; after a failure the group and datasets are still
 * created (collective), nothing more is written. */
static tsr_status write_tensors(hid_t file, const char *group_name,
                                const tsr_checkpoint_content *c, const float *base, bool packed,
                                bool moments, const char *path, tsr_status st)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1); /* "optimizer/exp_avg" in one call */
    hid_t group = H5Gcreate2(file, group_name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (group < 0)
        return st != TSR_OK ? st
                            : tsr_error_set(TSR_ERR_IO, "cannot create group %s in %s",
                                            group_name, path);
    for (size_t i = 0; i < c->tensor_count; i++) {
        if (moments && c->tensors[i].frozen)
            continue;
        tsr_status one = write_block(group, &c->tensors[i], c, base, packed, path, st == TSR_OK);
        if (st == TSR_OK)
            st = one;
    }
    H5Gclose(group);
    return st;
}

static tsr_status write_file(const char *tmp, const tsr_config *cfg,
                             const tsr_checkpoint_state *state,
                             const tsr_checkpoint_content *content, MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    /* The 1.8 file format: its superblock and object headers carry
     * checksums, so a load of a file whose metadata was damaged fails in
     * HDF5's checksum test with an error, where the older format let
     * libhdf5 1.10 read a damaged attribute message out of bounds and crash
     * (tests/fuzz/hdf5_findings). Readable by HDF5 1.8 and later. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0)
        return tsr_error_set(TSR_ERR_IO, "cannot create checkpoint file %s: check that the "
                                         "directory is writable on every node", tmp);
    tsr_checkpoint_state written = *state;
    written.weights_only = content->adam_m == NULL;
    tsr_checkpoint_write_metadata(file, cfg, &written);
    bool packed = content->shard.sharded_state;
    tsr_status st =
        write_tensors(file, "model", content, content->params, false, false, tmp, TSR_OK);
    if (!written.weights_only) {
        st = write_tensors(file, "optimizer/exp_avg", content, content->adam_m, packed, true,
                           tmp, st);
        st = write_tensors(file, "optimizer/exp_avg_sq", content, content->adam_v, packed, true,
                           tmp, st);
    }
    /* A failed H5Fclose leaves the file half closed, and libhdf5 1.10 then
     * crashes closing it again at MPI_Finalize. After any rank failed, the
     * partial file is emptied first (it will be removed anyway), so that a
     * full disk has room for the metadata the close writes. */
    int failed = st != TSR_OK, any_failed = 0, rank = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    MPI_Comm_rank(comm, &rank);
    if (any_failed) {
        if (rank == 0 && truncate(tmp, 0) != 0)
            tsr_log(TSR_LOG_WARN, "cannot empty the partial checkpoint %s: %s", tmp,
                    strerror(errno));
        MPI_Barrier(comm);
    }
    if (H5Fclose(file) < 0 && st == TSR_OK)
        st = tsr_error_set(TSR_ERR_IO, "cannot close checkpoint file %s: %s", tmp,
                           strerror(errno));
    return st;
}

/* Writes `text` to path atomically: temporary file, fsync, rename. */
static tsr_status replace_file(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.4000s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return tsr_error_set(TSR_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0)
        return tsr_error_set(TSR_ERR_IO, "cannot replace %s: %s", path, strerror(errno));
    return TSR_OK;
}

static void sync_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Bytes the file will take, from above: every dataset once (a tensor held
 * as two blocks is described twice), its moments unless frozen, object
 * headers and attributes, the root metadata. */
static uint64_t expected_bytes(const tsr_checkpoint_content *c)
{
    uint64_t bytes = 64u << 10;
    for (size_t i = 0; i < c->tensor_count; i++) {
        const tsr_tensor_desc *t = &c->tensors[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(c->tensors[j].name, t->name) == 0;
        if (!seen)
            bytes += (uint64_t)t->rows * (uint64_t)t->cols * sizeof(float) * (t->frozen ? 1 : 3) +
                     3 * 2048;
    }
    return bytes;
}

/* A save that cannot fit fails here, before HDF5 is involved: libhdf5 1.10
 * does not always survive a write that fails for a full disk. */
static tsr_status check_space(const char *dir, const tsr_checkpoint_content *c)
{
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0)
        return tsr_error_set(TSR_ERR_IO, "cannot read the free space of --save %s: %s", dir,
                             strerror(errno));
    uint64_t need = expected_bytes(c), have = (uint64_t)fs.f_bavail * fs.f_frsize;
    if (have < need)
        return tsr_error_set(TSR_ERR_IO,
                             "--save %s: the checkpoint needs about %.1f MiB but the file "
                             "system has %.1f MiB free (%s, errno %d); free space or point "
                             "--save elsewhere",
                             dir, (double)need / 1048576.0, (double)have / 1048576.0,
                             strerror(ENOSPC), ENOSPC);
    return TSR_OK;
}

static tsr_status write_and_publish(const char *dir, const char *tmp, const char *final_path,
                                    const tsr_config *cfg, const tsr_checkpoint_state *state,
                                    const tsr_checkpoint_content *content, MPI_Comm comm);

tsr_status tsr_checkpoint_save(const char *dir, const tsr_config *cfg,
                               const tsr_checkpoint_state *state,
                               const tsr_checkpoint_content *content, MPI_Comm comm)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    int made = 1;
    if (rank == 0)
        made = mkdir(dir, 0755) == 0 || errno == EEXIST;
    MPI_Bcast(&made, 1, MPI_INT, 0, comm);
    if (!made)
        return tsr_error_set(TSR_ERR_IO, "cannot create checkpoint directory --save %s", dir);
    char final_path[4096], tmp[4200];
    tsr_checkpoint_path(dir, state->iteration, final_path, sizeof final_path);
    snprintf(tmp, sizeof tmp, "%.4000s.tmp", final_path);
    tsr_status st = TSR_OK;
    int space_ok = 1;
    if (rank == 0) {
        st = check_space(dir, content);
        space_ok = st == TSR_OK;
    }
    MPI_Bcast(&space_ok, 1, MPI_INT, 0, comm);
    if (!space_ok)
        return rank == 0 ? st
                         : tsr_error_set(TSR_ERR_IO, "not enough space in --save %s", dir);
    tsr_checkpoint_watch_begin(comm, "checkpoint write", tmp);
    st = write_and_publish(dir, tmp, final_path, cfg, state, content, comm);
    tsr_checkpoint_watch_end();
    return st;
}

/* The collective part of a save, between the watch's begin and end. */
static tsr_status write_and_publish(const char *dir, const char *tmp, const char *final_path,
                                    const tsr_config *cfg, const tsr_checkpoint_state *state,
                                    const tsr_checkpoint_content *content, MPI_Comm comm)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    tsr_status st;
    H5E_BEGIN_TRY /* failures become tessera messages, not HDF5 stack dumps */
    {
        st = write_file(tmp, cfg, state, content, comm);
    }
    H5E_END_TRY;
    int failed = st != TSR_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    if (!any_failed) {
        H5E_BEGIN_TRY
        {
            st = tsr_checkpoint_write_checksums(tmp, comm);
        }
        H5E_END_TRY;
        failed = st != TSR_OK;
        MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    }
    if (any_failed) {
        /* the partial file only takes the space a retry needs */
        if (rank == 0)
            unlink(tmp);
        char why[1024];
        snprintf(why, sizeof why, "%s", st != TSR_OK ? tsr_last_error() : "another rank failed");
        return tsr_error_set(st != TSR_OK ? st : TSR_ERR_IO,
                             "checkpoint of iteration %lld not written: %s; the previous "
                             "checkpoint and %s/%s are untouched",
                             (long long)state->iteration, why, dir, TSR_CHECKPOINT_LATEST_FILE);
    }
    int ok = 1;
    if (rank == 0) {
        sync_file(tmp);
        ok = rename(tmp, final_path) == 0;
        if (ok) {
            char text[64];
            snprintf(text, sizeof text, "%lld\n", (long long)state->iteration);
            char latest[4200];
            snprintf(latest, sizeof latest, "%.4000s/%s", dir, TSR_CHECKPOINT_LATEST_FILE);
            ok = replace_file(latest, text) == TSR_OK;
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
    if (!ok)
        return tsr_error_set(TSR_ERR_IO, "cannot publish checkpoint %s (rename or pointer file "
                                         "failed); the previous checkpoint is untouched",
                             final_path);
    return TSR_OK;
}
