/*
 * checkpoint_checksum.c - a CRC-32C beside every tensor of a checkpoint
 * (checkpoint_internal.h).
 *
 * Each tensor dataset carries an attribute "crc32c": the CRC-32C of its
 * float32 little-endian bytes in row-major order of the GLOBAL tensor, so
 * the value does not depend on the layout that wrote it or reads it. It is
 * computed from what the file holds once every rank has written its
 * blocks: the datasets are dealt out over the ranks, each reads its share
 * whole (in slabs of at most SLAB_FLOATS) and all ranks then store every
 * value (attribute writes are collective in parallel HDF5). Loading deals
 * the datasets out the same way and compares.
 *
 * Why a CRC of our own instead of HDF5's Fletcher32 filter: parallel HDF5
 * writes filtered (chunked) datasets only with collective transfers, in
 * which every rank takes part in every write, while tessera's ranks each
 * write only their own blocks, independently; a CRC kept as an attribute
 * works with any transfer mode, with serial and parallel HDF5, and can be
 * checked by any tool that reads the file.
 */
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "crc32c.h"

#define CHECKSUM_ATTR "crc32c"
#define SLAB_FLOATS ((hsize_t)1 << 20)

static const char *const tensor_groups[] = {"model", "optimizer/exp_avg",
                                            "optimizer/exp_avg_sq"};
#define GROUP_COUNT (sizeof tensor_groups / sizeof tensor_groups[0])

/* The tensor datasets of a file, as "group/name", in HDF5's name order
 * (the same on every rank). */
typedef struct dataset_list {
    char **names;
    size_t count, cap;
} dataset_list;

typedef struct list_ctx {
    dataset_list *list;
    const char *group;
    int failed;
} list_ctx;

static herr_t add_dataset(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    list_ctx *ctx = data;
    H5O_info_t oinfo;
    if (H5Oget_info_by_name(group, name, &oinfo, H5P_DEFAULT) < 0 ||
        oinfo.type != H5O_TYPE_DATASET)
        return 0; /* a subgroup (optimizer/ holds two) */
    dataset_list *l = ctx->list;
    if (l->count == l->cap) {
        size_t cap = l->cap > 0 ? 2 * l->cap : 64;
        char **grown = realloc(l->names, cap * sizeof *grown);
        if (grown == NULL) {
            ctx->failed = 1;
            return -1;
        }
        l->names = grown;
        l->cap = cap;
    }
    size_t len = strlen(ctx->group) + 1 + strlen(name) + 1;
    char *full = malloc(len);
    if (full == NULL) {
        ctx->failed = 1;
        return -1;
    }
    snprintf(full, len, "%s/%s", ctx->group, name);
    l->names[l->count++] = full;
    return 0;
}

static void list_free(dataset_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* A weights-only file has the model group alone. */
static tsr_status list_datasets(hid_t file, const char *path, dataset_list *l)
{
    memset(l, 0, sizeof *l);
    size_t groups = tsr_checkpoint_file_weights_only(file) ? 1 : GROUP_COUNT;
    for (size_t g = 0; g < groups; g++) {
        hid_t group = H5Gopen2(file, tensor_groups[g], H5P_DEFAULT);
        if (group < 0) {
            list_free(l);
            return tsr_error_set(TSR_ERR_FORMAT, "checkpoint %s has no group %s", path,
                                 tensor_groups[g]);
        }
        list_ctx ctx = {l, tensor_groups[g], 0};
        hsize_t idx = 0;
        herr_t err = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, add_dataset, &ctx);
        H5Gclose(group);
        if (err < 0 || ctx.failed) {
            list_free(l);
            return ctx.failed ? tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory listing %s", path)
                              : tsr_error_set(TSR_ERR_FORMAT,
                                              "checkpoint %s is damaged: its group %s cannot be "
                                              "listed",
                                              path, tensor_groups[g]);
        }
    }
    return TSR_OK;
}

/* CRC-32C of a whole dataset of floats; -1 when HDF5 cannot read it. */
static int dataset_crc(hid_t file, const char *name, float *slab, uint32_t *crc)
{
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    if (set < 0)
        return -1;
    hid_t space = H5Dget_space(set);
    int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    /* as (blocks, rows, cols): a matrix is one block, experts' stacked
     * weights (experts, rows, cols) one per expert; the bytes in order */
    hsize_t dims[3] = {0, 1, 1};
    int err = rank < 1 || rank > 3 || H5Sget_simple_extent_dims(space, dims, NULL) < 0;
    hsize_t blocks = rank == 3 ? dims[0] : 1, rows = rank == 3 ? dims[1] : dims[0];
    hsize_t cols = rank == 3 ? dims[2] : rank == 2 ? dims[1] : 1;
    hsize_t rows_per_slab = cols >= SLAB_FLOATS ? 1 : SLAB_FLOATS / cols;
    uint32_t c = 0;
    for (hsize_t e = 0; !err && e < blocks; e++)
        for (hsize_t r = 0; !err && r < rows; r += rows_per_slab) {
            hsize_t n = rows - r < rows_per_slab ? rows - r : rows_per_slab;
            hsize_t start[3] = {e, r, 0}, count[3] = {1, n, cols};
            hsize_t *st = rank == 3 ? start : start + 1, *ct = rank == 3 ? count : count + 1;
            hsize_t elements = n * cols;
            hid_t mem = H5Screate_simple(1, &elements, NULL);
            err = mem < 0 || H5Sselect_hyperslab(space, H5S_SELECT_SET, st, NULL, ct, NULL) < 0 ||
                  H5Dread(set, H5T_IEEE_F32LE, mem, space, H5P_DEFAULT, slab) < 0;
            if (mem >= 0)
                H5Sclose(mem);
            if (!err)
                c = tsr_crc32c(c, slab, (size_t)elements * sizeof(float));
        }
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(set);
    *crc = c;
    return err ? -1 : 0;
}

/* The slab buffer: SLAB_FLOATS, or one row of the widest dataset. */
static float *slab_alloc(hid_t file, const dataset_list *l)
{
    hsize_t floats = SLAB_FLOATS;
    for (size_t i = 0; i < l->count; i++) {
        hid_t set = H5Dopen2(file, l->names[i], H5P_DEFAULT);
        if (set < 0)
            continue;
        hid_t space = H5Dget_space(set);
        hsize_t dims[3] = {0, 1, 1};
        int rank = space < 0 ? 0 : H5Sget_simple_extent_ndims(space);
        if ((rank == 2 || rank == 3) && H5Sget_simple_extent_dims(space, dims, NULL) >= 0 &&
            dims[rank - 1] > floats)
            floats = dims[rank - 1]; /* one row */
        if (space >= 0)
            H5Sclose(space);
        H5Dclose(set);
    }
    return malloc((size_t)floats * sizeof(float));
}

/* Every rank's share computed and summed into crcs[] (zeros elsewhere);
 * unreadable[i] is 1 where the dealt rank could not read dataset i. */
static tsr_status compute_all(hid_t file, const char *path, const dataset_list *l,
                              uint32_t *crcs, int *unreadable, MPI_Comm comm)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    float *slab = slab_alloc(file, l);
    int no_memory = slab == NULL, any_no_memory = 0;
    for (size_t i = 0; i < l->count; i++) {
        crcs[i] = 0;
        unreadable[i] = 0;
        if (slab != NULL && (int)(i % (size_t)size) == rank) {
            unreadable[i] = dataset_crc(file, l->names[i], slab, &crcs[i]) < 0;
            tsr_checkpoint_watch_step();
        }
    }
    free(slab);
    MPI_Allreduce(&no_memory, &any_no_memory, 1, MPI_INT, MPI_MAX, comm);
    if (any_no_memory)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory checksumming %s", path);
    int n = (int)l->count;
    MPI_Allreduce(MPI_IN_PLACE, crcs, n, MPI_UINT32_T, MPI_BOR, comm);
    MPI_Allreduce(MPI_IN_PLACE, unreadable, n, MPI_INT, MPI_MAX, comm);
    return TSR_OK;
}

static tsr_status store_all(hid_t file, const char *path, const dataset_list *l,
                            const uint32_t *crcs, const int *unreadable)
{
    for (size_t i = 0; i < l->count; i++) {
        if (unreadable[i])
            return tsr_error_set(TSR_ERR_IO,
                                 "cannot read back tensor %s from %s to checksum it (disk "
                                 "full or failing?)",
                                 l->names[i], path);
        hid_t set = H5Dopen2(file, l->names[i], H5P_DEFAULT);
        hid_t scalar = H5Screate(H5S_SCALAR);
        hid_t attr = set < 0 ? -1
                             : H5Acreate2(set, CHECKSUM_ATTR, H5T_STD_U32LE, scalar,
                                          H5P_DEFAULT, H5P_DEFAULT);
        herr_t err = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_UINT32, &crcs[i]);
        if (attr >= 0)
            H5Aclose(attr);
        H5Sclose(scalar);
        if (set >= 0)
            H5Dclose(set);
        if (err < 0)
            return tsr_error_set(TSR_ERR_IO, "cannot store the checksum of %s in %s (disk "
                                             "full?)",
                                 l->names[i], path);
    }
    return TSR_OK;
}

tsr_status tsr_checkpoint_write_checksums(const char *path, MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (file < 0)
        return tsr_error_set(TSR_ERR_IO, "cannot reopen %s to checksum it", path);
    dataset_list l;
    tsr_status st = list_datasets(file, path, &l);
    uint32_t *crcs = NULL;
    int *unreadable = NULL;
    if (st == TSR_OK) {
        crcs = calloc(l.count + 1, sizeof *crcs);
        unreadable = calloc(l.count + 1, sizeof *unreadable);
        if (crcs == NULL || unreadable == NULL)
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory checksumming %s", path);
    }
    /* every rank lists the same file, so a failure so far is every rank's */
    if (st == TSR_OK)
        st = compute_all(file, path, &l, crcs, unreadable, comm);
    if (st == TSR_OK)
        st = store_all(file, path, &l, crcs, unreadable);
    free(crcs);
    free(unreadable);
    list_free(&l);
    if (H5Fclose(file) < 0 && st == TSR_OK)
        st = tsr_error_set(TSR_ERR_IO, "cannot close %s after checksumming it (disk full?)",
                           path);
    return st;
}

static int read_stored(hid_t file, const char *name, uint32_t *crc)
{
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    if (set < 0)
        return -1;
    int ok = H5Aexists(set, CHECKSUM_ATTR) > 0;
    hid_t attr = ok ? H5Aopen(set, CHECKSUM_ATTR, H5P_DEFAULT) : -1;
    ok = attr >= 0 && H5Aread(attr, H5T_NATIVE_UINT32, crc) >= 0;
    if (attr >= 0)
        H5Aclose(attr);
    H5Dclose(set);
    return ok ? 0 : -1;
}

tsr_status tsr_checkpoint_verify_checksums(hid_t file, const char *path, MPI_Comm comm)
{
    dataset_list l;
    tsr_status st = list_datasets(file, path, &l);
    if (st != TSR_OK)
        return st;
    uint32_t *crcs = calloc(l.count + 1, sizeof *crcs);
    int *unreadable = calloc(l.count + 1, sizeof *unreadable);
    if (crcs == NULL || unreadable == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory checking %s", path);
    if (st == TSR_OK)
        st = compute_all(file, path, &l, crcs, unreadable, comm);
    for (size_t i = 0; st == TSR_OK && i < l.count; i++) {
        uint32_t stored = 0;
        if (read_stored(file, l.names[i], &stored) < 0)
            st = tsr_error_set(TSR_ERR_FORMAT,
                               "checkpoint %s is damaged: tensor %s has no readable %s "
                               "checksum attribute",
                               path, l.names[i], CHECKSUM_ATTR);
        else if (unreadable[i])
            st = tsr_error_set(TSR_ERR_FORMAT,
                               "checkpoint %s is damaged: the data of tensor %s cannot be read",
                               path, l.names[i]);
        else if (stored != crcs[i])
            st = tsr_error_set(TSR_ERR_FORMAT,
                               "checkpoint %s is damaged: the data of tensor %s fails its "
                               "CRC-32C check (stored %08x, read %08x)",
                               path, l.names[i], (unsigned)stored, (unsigned)crcs[i]);
    }
    free(crcs);
    free(unreadable);
    list_free(&l);
    return st;
}
