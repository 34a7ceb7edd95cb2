/*
 * checkpoint_read.c - loading a checkpoint into this run's layout.
 *
 * Each rank reads its own block of every tensor at global shape, so the
 * layout that wrote the file does not matter. Parameters are read whole;
 * the moments of a sharded optimizer state only for the owned ranges. Problems found before any
 * tensor is read (missing pointer file, not HDF5, other model) are
 * reported the same way on every rank, as TSR_ERR_FORMAT.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"

/* The iterations of the checkpoints in dir, as "5, 10, 15" (at most
 * len - 1 characters; "none" when there is none). */
static void available_iterations(const char *dir, char *buf, size_t len)
{
    enum { MAX_LISTED = 4096 };
    long long found[MAX_LISTED];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && n < MAX_LISTED && (e = readdir(d)) != NULL) {
        long long it = -1;
        int used = 0;
        if (sscanf(e->d_name, "iter_%lld.h5%n", &it, &used) == 1 && it >= 0 &&
            e->d_name[used] == '\0')
            found[n++] = it;
    }
    if (d != NULL)
        closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort: a directory holds few */
        for (size_t j = i; j > 0 && found[j - 1] > found[j]; j--) {
            long long t = found[j];
            found[j] = found[j - 1];
            found[j - 1] = t;
        }
    size_t used = (size_t)snprintf(buf, len, "%s", n == 0 ? "none" : "");
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i > 0 ? ", " : "", found[i]);
}

/* The iteration latest_checkpointed_iteration.txt names. */
static tsr_status read_pointer(const char *flag, const char *dir, int64_t *iteration)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/%s", dir, TSR_CHECKPOINT_LATEST_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s %s: no checkpoint there (%s: %s); give the directory a "
                             "previous run passed to --save",
                             flag, dir, path, strerror(errno));
    char text[64] = "";
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[got] = '\0';
    char *end = NULL;
    errno = 0;
    long long it = strtoll(text, &end, 10);
    while (end != NULL && (*end == '\n' || *end == ' ' || *end == '\r'))
        end++;
    if (got == 0 || end == text || *end != '\0' || errno == ERANGE || it < 0 ||
        it > TSR_CHECKPOINT_COUNTER_MAX)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s does not hold an iteration number from 0 to %lld; write the "
                             "iteration of a checkpoint in that directory there, or pick one "
                             "with --ckpt-step",
                             path, (long long)TSR_CHECKPOINT_COUNTER_MAX);
    *iteration = it;
    return TSR_OK;
}

bool tsr_checkpoint_exists(const char *dir)
{
    char path[PATH_MAX];
    struct stat sb;
    int n = snprintf(path, sizeof path, "%s/%s", dir, TSR_CHECKPOINT_LATEST_FILE);
    return n > 0 && (size_t)n < sizeof path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

tsr_status tsr_checkpoint_resolve(const char *flag, const char *dir, int64_t step,
                                  int64_t *iteration)
{
    struct stat sb;
    int found = stat(dir, &sb) == 0;
    if (!found || !S_ISDIR(sb.st_mode))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s %s: no checkpoint there (%s); give the directory a "
                             "previous run passed to --save",
                             flag, dir, found ? "not a directory" : strerror(errno));
    int64_t it = step;
    if (step < 0) {
        tsr_status st = read_pointer(flag, dir, &it);
        if (st != TSR_OK)
            return st;
    }
    char path[4200], listed[512];
    tsr_checkpoint_path(dir, it, path, sizeof path);
    if (access(path, R_OK) != 0) {
        int err = errno;
        available_iterations(dir, listed, sizeof listed);
        if (step >= 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--ckpt-step %lld: no readable %s (%s); the iterations saved in "
                                 "%s are: %s",
                                 (long long)step, path, strerror(err), dir, listed);
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s/%s names iteration %lld but %s is missing (%s); the iterations "
                             "saved there are: %s (pick one with --ckpt-step)",
                             dir, TSR_CHECKPOINT_LATEST_FILE, (long long)it, path, strerror(err),
                             listed);
    }
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
    hsize_t dims[3] = {0, 1, 1}, want[3] = {0, 1, 1};
    if (rank >= 1 && rank <= 3)
        H5Sget_simple_extent_dims(space, dims, NULL);
    int want_rank = tsr_checkpoint_global_dims(t, want);
    tsr_status st = TSR_OK;
    if (rank != want_rank || dims[0] != want[0] || dims[1] != want[1] || dims[2] != want[2]) {
        char have[96], need[96];
        snprintf(have, sizeof have, "%llu", (unsigned long long)dims[0]);
        for (int i = 1; i < rank && i < 3; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "x%llu",
                     (unsigned long long)dims[i]);
        snprintf(need, sizeof need, "%llu", (unsigned long long)want[0]);
        for (int i = 1; i < want_rank; i++)
            snprintf(need + strlen(need), sizeof need - strlen(need), "x%llu",
                     (unsigned long long)want[i]);
        st = tsr_error_set(TSR_ERR_FORMAT,
                           "checkpoint %s: tensor %s/%s has shape %s but this model needs %s",
                           path, group_name, t->name, have, need);
    } else {
        tsr_checkpoint_transfer r = {set, space, NULL, base, 0};
        if (tsr_checkpoint_for_pieces(t, shard, shard != NULL, tsr_checkpoint_transfer_piece,
                                      &r) < 0)
            st = tsr_error_set(TSR_ERR_FORMAT, "checkpoint %s: cannot read %s/%s (truncated?)",
                               path, group_name, t->name);
        tsr_checkpoint_watch_step();
    }
    H5Sclose(space);
    H5Dclose(set);
    return st;
}

/* adapters: the file holds adapters (a LoRA run's); a base model has
 * none, and the adapters of the run loading it keep their initial values */
static tsr_status read_tensors(hid_t file, const char *group_name,
                               const tsr_checkpoint_content *c, float *base,
                               const tsr_param_shard *shard, const char *path, bool adapters)
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
        if (t->adapter && !adapters)
            continue;
        if (t->frozen && !moments)
            st = read_block(group, t, c->frozen, NULL, path, group_name);
        else if (!t->frozen)
            st = read_block(group, t, base, shard, path, group_name);
    }
    H5Gclose(group);
    return st;
}

static bool content_has_adapters(const tsr_checkpoint_content *c)
{
    for (size_t i = 0; i < c->tensor_count; i++)
        if (c->tensors[i].adapter)
            return true;
    return false;
}

/* *damaged: the file's tensor data failed its checksums. */
static tsr_status read_file(const char *path, const tsr_config *cfg, tsr_checkpoint_state *state,
                            const tsr_checkpoint_content *content, MPI_Comm comm, bool *damaged)
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
    /* the checksum pass is collective: every rank must reach it or none */
    int failed = st != TSR_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    if (!any_failed && state->format_version >= TSR_CHECKPOINT_FIRST_CHECKSUMMED_VERSION) {
        st = tsr_checkpoint_verify_checksums(file, path, comm);
        *damaged = st != TSR_OK;
    } else if (any_failed && st == TSR_OK) {
        st = tsr_error_set(TSR_ERR_FORMAT, "another rank could not read checkpoint %s", path);
    }
    const tsr_param_shard *owned = content->shard.sharded_state ? &content->shard : NULL;
    bool moments = content->adam_m != NULL;
    if (st == TSR_OK && moments && state->weights_only)
        st = tsr_error_set(TSR_ERR_FORMAT,
                           "checkpoint %s holds weights only, no optimizer state (tessera "
                           "convert writes such files): start a fine-tuning run from it with "
                           "--finetune, or --pretrained-checkpoint DIR, or keep --load and add "
                           "--no-load-optim",
                           path);
    if (st == TSR_OK)
        st = read_tensors(file, "model", content, content->params, NULL, path, state->adapters);
    if (st == TSR_OK && moments && !state->adapters && content_has_adapters(content))
        st = tsr_error_set(TSR_ERR_FORMAT,
                           "checkpoint %s holds no LoRA adapters, so it has no optimizer state "
                           "for them: start the adapter run from it with --finetune, or "
                           "--pretrained-checkpoint DIR, or add --no-load-optim",
                           path);
    if (st == TSR_OK && moments)
        st = read_tensors(file, "optimizer/exp_avg", content, content->adam_m, owned, path,
                          state->adapters);
    if (st == TSR_OK && moments)
        st = read_tensors(file, "optimizer/exp_avg_sq", content, content->adam_v, owned, path,
                          state->adapters);
    H5Fclose(file);
    return st;
}

tsr_status tsr_checkpoint_load(const char *flag, const char *dir, const tsr_config *cfg,
                               tsr_checkpoint_state *state,
                               const tsr_checkpoint_content *content, MPI_Comm comm)
{
    int64_t iteration = 0;
    tsr_status st = tsr_checkpoint_resolve(flag, dir, cfg->ckpt_step, &iteration);
    char path[4096] = "";
    bool damaged = false;
    if (st == TSR_OK) {
        tsr_checkpoint_path(dir, iteration, path, sizeof path);
        tsr_checkpoint_watch_begin(comm, "checkpoint load", path);
        H5E_BEGIN_TRY
        {
            st = read_file(path, cfg, state, content, comm, &damaged);
        }
        H5E_END_TRY;
        tsr_checkpoint_watch_end();
    }
    int failed = st != TSR_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    if (any_failed && st == TSR_OK)
        return tsr_error_set(TSR_ERR_FORMAT, "another rank could not read checkpoint %s", path);
    if (st == TSR_OK && state->iteration != iteration)
        return tsr_error_set(TSR_ERR_FORMAT, "%s is named for iteration %lld but holds iteration "
                                             "%lld; it was renamed or overwritten",
                             path, (long long)iteration, (long long)state->iteration);
    if (damaged) {
        char message[1024], listed[512];
        snprintf(message, sizeof message, "%s", tsr_last_error());
        available_iterations(dir, listed, sizeof listed);
        return tsr_error_set(st, "%s; load an earlier checkpoint with --ckpt-step N (the "
                                 "iterations saved in %s are: %s)",
                             message, dir, listed);
    }
    return st;
}
