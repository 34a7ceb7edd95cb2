/*
 * hdf5_tokens.c - HDF5 token datasets (layout in hdf5_tokens.h).
 *
 * Invariant after open: offsets[] is validated (starts at 0, never
 * decreases, ends at the token count) and every token is in [0, vocab), so
 * read() only fails on I/O errors. HDF5's own error stack is silenced
 * around every call; failures come back as tessera messages naming the
 * file and what is wrong.
 */
#include "hdf5_tokens.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "file_check.h"

typedef struct hdf5_tokens {
    tsr_token_source source; /* first: the source view casts back */
    char *path;
    hid_t file, tokens, space;
    int64_t token_count;
    int64_t vocab_size;
    int64_t *offsets; /* documents + 1 */
} hdf5_tokens;

enum { SCAN_CHUNK = 1 << 18 };

int tsr_hdf5_tokens_is_path(const char *path)
{
    size_t n = strlen(path);
    return (n > 3 && strcmp(path + n - 3, ".h5") == 0) ||
           (n > 5 && strcmp(path + n - 5, ".hdf5") == 0);
}

static void close_handles(hdf5_tokens *h)
{
    H5E_BEGIN_TRY
    {
        if (h->space >= 0)
            H5Sclose(h->space);
        if (h->tokens >= 0)
            H5Dclose(h->tokens);
        if (h->file >= 0)
            H5Fclose(h->file);
    }
    H5E_END_TRY;
    h->space = h->tokens = h->file = -1;
}

static void destroy(tsr_token_source *src)
{
    hdf5_tokens *h = (hdf5_tokens *)(void *)src;
    close_handles(h);
    free(h->offsets);
    free(h->path);
    free(h);
}

static int64_t doc_length(const tsr_token_source *src, int64_t doc)
{
    const hdf5_tokens *h = (const hdf5_tokens *)(const void *)src;
    return h->offsets[doc + 1] - h->offsets[doc];
}

/* Reads count elements of `dset` from `start` as `memtype` into out. */
static int read_range(hid_t dset, hid_t space, int64_t start, int64_t count, hid_t memtype,
                      void *out)
{
    if (count == 0)
        return 1;
    hsize_t first = (hsize_t)start, n = (hsize_t)count;
    herr_t rc = -1;
    H5E_BEGIN_TRY
    {
        hid_t mem = H5Screate_simple(1, &n, NULL);
        if (mem >= 0 && H5Sselect_hyperslab(space, H5S_SELECT_SET, &first, NULL, &n, NULL) >= 0)
            rc = H5Dread(dset, memtype, mem, space, H5P_DEFAULT, out);
        if (mem >= 0)
            H5Sclose(mem);
    }
    H5E_END_TRY;
    return rc >= 0;
}

static tsr_status bad_token(const hdf5_tokens *h, int64_t at, long long value)
{
    return tsr_error_set(TSR_ERR_FORMAT,
                         "%s: token %lld at /tokens[%lld] is outside the vocabulary [0, %lld); "
                         "give the --vocab-size the data was tokenized with",
                         h->path, value, (long long)at, (long long)h->vocab_size);
}

static tsr_status read_tokens(const tsr_token_source *src, int64_t doc, int64_t offset,
                              int64_t count, int32_t *out)
{
    const hdf5_tokens *h = (const hdf5_tokens *)(const void *)src;
    if (doc < 0 || doc >= src->documents || offset < 0 || count < 0 ||
        offset > doc_length(src, doc) - count)
        return tsr_error_set(TSR_ERR_INTERNAL, "%s: read outside document %lld", h->path,
                             (long long)doc);
    int64_t start = h->offsets[doc] + offset;
    if (!read_range(h->tokens, h->space, start, count, H5T_NATIVE_INT32, out))
        return tsr_error_set(TSR_ERR_IO, "%s: cannot read /tokens[%lld..%lld)", h->path,
                             (long long)start, (long long)(start + count));
    for (int64_t i = 0; i < count; i++)
        if (out[i] < 0 || out[i] >= h->vocab_size)
            return bad_token(h, start + i, out[i]);
    return TSR_OK;
}

static const tsr_token_source_ops ops = {doc_length, read_tokens, destroy, NULL};

/* A dataset stored through a filter (compression) this libhdf5 lacks
 * opens, then fails on every read with a message that names no filter;
 * naming it here tells the user what to install. */
static tsr_status check_filters(const hdf5_tokens *h, hid_t dset, const char *name)
{
    tsr_status st = TSR_OK;
    H5E_BEGIN_TRY
    {
        hid_t dcpl = H5Dget_create_plist(dset);
        int n = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
        for (int i = 0; st == TSR_OK && i < n; i++) {
            unsigned flags = 0, config = 0;
            size_t values = 0;
            char filter[64] = "";
            H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &values, NULL,
                                             sizeof filter, filter, &config);
            if (id < 0 || H5Zfilter_avail(id) > 0)
                continue;
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "%s: /%s is stored with the HDF5 filter %d%s%s%s, which this "
                               "libhdf5 does not have; install that filter's plugin and set "
                               "HDF5_PLUGIN_PATH to its directory, or rewrite the file "
                               "without filters where it is installed (h5repack -f NONE %s "
                               "plain.h5)",
                               h->path, name, (int)id, filter[0] != '\0' ? " (\"" : "", filter,
                               filter[0] != '\0' ? "\")" : "", h->path);
        }
        if (dcpl >= 0)
            H5Pclose(dcpl);
    }
    H5E_END_TRY;
    return st;
}

/* Opens a 1-D integer dataset; *length receives its extent. */
static tsr_status open_vector(hdf5_tokens *h, const char *name, hid_t *dset, hid_t *space,
                              int64_t *length)
{
    *dset = *space = -1;
    int ok = 0, rank = -1;
    hsize_t dims[1] = {0};
    H5T_class_t cls = H5T_NO_CLASS;
    H5E_BEGIN_TRY
    {
        if (H5Lexists(h->file, name, H5P_DEFAULT) > 0)
            *dset = H5Dopen2(h->file, name, H5P_DEFAULT);
        if (*dset >= 0) {
            hid_t type = H5Dget_type(*dset);
            if (type >= 0) {
                cls = H5Tget_class(type);
                H5Tclose(type);
            }
            *space = H5Dget_space(*dset);
        }
        if (*space >= 0) {
            rank = H5Sget_simple_extent_ndims(*space);
            if (rank == 1 && H5Sget_simple_extent_dims(*space, dims, NULL) == 1)
                ok = 1;
        }
    }
    H5E_END_TRY;
    if (*dset < 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s has no dataset /%s; an HDF5 token file holds /tokens and "
                             "/document_offsets (see docs/data-format.md)",
                             h->path, name);
    if (!ok || cls != H5T_INTEGER)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: /%s must be a one-dimensional integer dataset (it has rank %d"
                             "%s)",
                             h->path, name, rank, cls != H5T_INTEGER ? ", not integers" : "");
    *length = (int64_t)dims[0];
    return check_filters(h, *dset, name);
}

static tsr_status read_offsets(hdf5_tokens *h)
{
    hid_t dset = -1, space = -1;
    int64_t n = 0;
    tsr_status st = open_vector(h, "document_offsets", &dset, &space, &n);
    if (st == TSR_OK && n < 1)
        st = tsr_error_set(TSR_ERR_FORMAT,
                           "%s: /document_offsets is empty; it needs documents + 1 entries "
                           "starting with 0",
                           h->path);
    if (st == TSR_OK) {
        h->offsets = malloc((size_t)n * sizeof *h->offsets);
        if (h->offsets == NULL)
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "%s: cannot hold %lld document offsets",
                               h->path, (long long)n);
        else if (!read_range(dset, space, 0, n, H5T_NATIVE_INT64, h->offsets))
            st = tsr_error_set(TSR_ERR_IO, "%s: cannot read /document_offsets", h->path);
    }
    H5E_BEGIN_TRY
    {
        if (space >= 0)
            H5Sclose(space);
        if (dset >= 0)
            H5Dclose(dset);
    }
    H5E_END_TRY;
    if (st != TSR_OK)
        return st;
    if (h->offsets[0] != 0)
        return tsr_error_set(TSR_ERR_FORMAT, "%s: /document_offsets[0] is %lld; it must be 0",
                             h->path, (long long)h->offsets[0]);
    for (int64_t i = 1; i < n; i++)
        if (h->offsets[i] < h->offsets[i - 1] || h->offsets[i] > h->token_count)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "%s: /document_offsets[%lld] = %lld after %lld; offsets must "
                                 "not decrease nor pass the %lld tokens",
                                 h->path, (long long)i, (long long)h->offsets[i],
                                 (long long)h->offsets[i - 1], (long long)h->token_count);
    if (h->offsets[n - 1] != h->token_count)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: the last document offset is %lld but /tokens holds %lld "
                             "tokens; they must be equal",
                             h->path, (long long)h->offsets[n - 1], (long long)h->token_count);
    h->source.documents = n - 1;
    return TSR_OK;
}

static tsr_status scan_tokens(const hdf5_tokens *h)
{
    long long *chunk = malloc(SCAN_CHUNK * sizeof *chunk);
    if (chunk == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a scan buffer");
    tsr_status st = TSR_OK;
    for (int64_t start = 0; st == TSR_OK && start < h->token_count; start += SCAN_CHUNK) {
        int64_t n = h->token_count - start < SCAN_CHUNK ? h->token_count - start : SCAN_CHUNK;
        if (!read_range(h->tokens, h->space, start, n, H5T_NATIVE_LLONG, chunk)) {
            st = tsr_error_set(TSR_ERR_IO, "%s: cannot read /tokens", h->path);
            break;
        }
        for (int64_t i = 0; i < n; i++)
            if (chunk[i] < 0 || chunk[i] >= h->vocab_size) {
                st = bad_token(h, start + i, chunk[i]);
                break;
            }
    }
    free(chunk);
    return st;
}

tsr_status tsr_hdf5_tokens_open(const char *path, int64_t vocab_size, tsr_token_source **out)
{
    *out = NULL;
    hdf5_tokens *h = calloc(1, sizeof *h);
    if (h == NULL || (h->path = strdup(path)) == NULL) {
        free(h);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the reader of %s", path);
    }
    h->source.ops = &ops;
    h->source.name = h->path;
    h->vocab_size = vocab_size > 0 ? vocab_size : (int64_t)INT32_MAX + 1;
    h->space = h->tokens = -1;
    /* HDF5 opens files by name, so a FIFO would block it and a directory
     * would read as "not HDF5": the type is checked first */
    tsr_status st = tsr_file_check_input(path, NULL);
    htri_t is_hdf5 = -1;
    H5E_BEGIN_TRY
    {
        is_hdf5 = st == TSR_OK ? H5Fis_hdf5(path) : -1;
        h->file = is_hdf5 > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    }
    H5E_END_TRY;
    if (st == TSR_OK && is_hdf5 < 0)
        st = tsr_error_set(TSR_ERR_IO, "cannot open %s (HDF5 cannot read it)", path);
    else if (st == TSR_OK && is_hdf5 == 0)
        st = tsr_error_set(TSR_ERR_FORMAT, "%s is not an HDF5 file", path);
    else if (st == TSR_OK && h->file < 0)
        st = tsr_error_set(TSR_ERR_FORMAT, "%s: HDF5 cannot open it (damaged or truncated)",
                           path);
    if (st == TSR_OK)
        st = open_vector(h, "tokens", &h->tokens, &h->space, &h->token_count);
    if (st == TSR_OK)
        st = read_offsets(h);
    if (st == TSR_OK)
        st = scan_tokens(h);
    if (st != TSR_OK) {
        destroy(&h->source);
        return st;
    }
    *out = &h->source;
    return TSR_OK;
}

static int write_vector(hid_t file, const char *name, hid_t filetype, hid_t memtype,
                        int64_t count, const void *data)
{
    hsize_t n = (hsize_t)count;
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t dset = space >= 0 ? H5Dcreate2(file, name, filetype, space, H5P_DEFAULT, H5P_DEFAULT,
                                         H5P_DEFAULT)
                            : -1;
    int ok = dset >= 0 && (count == 0 || H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                  data) >= 0);
    if (dset >= 0)
        H5Dclose(dset);
    if (space >= 0)
        H5Sclose(space);
    return ok;
}

tsr_status tsr_hdf5_tokens_write(const char *path, const int32_t *tokens, const int64_t *offsets,
                                 int64_t documents, int64_t vocab_size)
{
    int ok = 0;
    H5E_BEGIN_TRY
    {
        hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (file >= 0) {
            hid_t token_type = vocab_size < 65500 ? H5T_STD_U16LE : H5T_STD_I32LE;
            ok = write_vector(file, "tokens", token_type, H5T_NATIVE_INT32, offsets[documents],
                              tokens) &&
                 write_vector(file, "document_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64,
                              documents + 1, offsets);
            if (H5Fclose(file) < 0)
                ok = 0;
        }
    }
    H5E_END_TRY;
    return ok ? TSR_OK : tsr_error_set(TSR_ERR_IO, "cannot write the HDF5 token file %s", path);
}
