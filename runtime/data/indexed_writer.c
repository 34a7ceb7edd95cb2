/*
 * indexed_writer.c - writes a Megatron MMIDIDX .bin/.idx pair (see
 * indexed.h for the layout).
 *
 * Tokens stream to PREFIX.bin as they are added; the sequence lengths and
 * document indices stay in memory (12 bytes per sequence) and PREFIX.idx is
 * written by finish(), with pointers computed as the running sum of
 * length x itemsize, as Megatron's _IndexWriter does. A failed write leaves
 * no half-written pair behind when the caller aborts. Called by `tessera
 * preprocess` and by the tests that build hand-made datasets.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indexed.h"

struct tsr_indexed_writer {
    char *bin_path, *idx_path;
    FILE *bin;
    tsr_indexed_dtype dtype;
    size_t itemsize;
    int32_t *lengths;
    int64_t sequences, lengths_cap;
    int64_t *docs;
    int64_t doc_count, docs_cap;
    unsigned char buffer[8192];
};

static char *path_with(const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s%s", prefix, suffix);
    return p;
}

static void writer_free(tsr_indexed_writer *w)
{
    if (w->bin != NULL)
        fclose(w->bin);
    free(w->bin_path);
    free(w->idx_path);
    free(w->lengths);
    free(w->docs);
    free(w);
}

tsr_status tsr_indexed_writer_open(const char *prefix, tsr_indexed_dtype dtype,
                                   tsr_indexed_writer **out)
{
    *out = NULL;
    if (tsr_indexed_dtype_size((int)dtype) == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "unknown MMIDIDX dtype code %d", (int)dtype);
    tsr_indexed_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the writer of %s", prefix);
    w->dtype = dtype;
    w->itemsize = tsr_indexed_dtype_size((int)dtype);
    w->bin_path = path_with(prefix, ".bin");
    w->idx_path = path_with(prefix, ".idx");
    w->docs_cap = 1024;
    w->docs = malloc((size_t)w->docs_cap * sizeof *w->docs);
    if (w->bin_path == NULL || w->idx_path == NULL || w->docs == NULL) {
        writer_free(w);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the writer of %s", prefix);
    }
    w->docs[0] = 0; /* Megatron's document indices start with 0 */
    w->doc_count = 1;
    w->bin = fopen(w->bin_path, "wb");
    if (w->bin == NULL) {
        tsr_status st = tsr_error_set(TSR_ERR_IO, "cannot create %s: %s", w->bin_path,
                                      strerror(errno));
        writer_free(w);
        return st;
    }
    *out = w;
    return TSR_OK;
}

static int fits(tsr_indexed_dtype dtype, int32_t v)
{
    switch (dtype) {
    case TSR_INDEXED_UINT8:
        return v >= 0 && v <= 255;
    case TSR_INDEXED_INT8:
        return v >= -128 && v <= 127;
    case TSR_INDEXED_INT16:
        return v >= -32768 && v <= 32767;
    case TSR_INDEXED_UINT16:
        return v >= 0 && v <= 65535;
    case TSR_INDEXED_FLOAT32:
        return v >= -(1 << 24) && v <= (1 << 24); /* exact in a float */
    default:
        return 1;
    }
}

static void encode(tsr_indexed_dtype dtype, int32_t v, unsigned char *p)
{
    switch (dtype) {
    case TSR_INDEXED_UINT8:
    case TSR_INDEXED_INT8: {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case TSR_INDEXED_INT16:
    case TSR_INDEXED_UINT16: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case TSR_INDEXED_INT32:
        memcpy(p, &v, 4);
        break;
    case TSR_INDEXED_INT64: {
        int64_t x = v;
        memcpy(p, &x, 8);
        break;
    }
    case TSR_INDEXED_FLOAT32: {
        float x = (float)v;
        memcpy(p, &x, 4);
        break;
    }
    case TSR_INDEXED_FLOAT64: {
        double x = v;
        memcpy(p, &x, 8);
        break;
    }
    }
}

static int grow(void **array, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    int64_t n = *cap > 0 ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *p = realloc(*array, (size_t)n * elem);
    if (p == NULL)
        return 0;
    *array = p;
    *cap = n;
    return 1;
}

tsr_status tsr_indexed_writer_add(tsr_indexed_writer *w, const int32_t *tokens, int64_t count)
{
    if (count < 0 || count > INT32_MAX)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "a sequence of %lld tokens does not fit the int32 lengths of an "
                             "MMIDIDX index",
                             (long long)count);
    if (!grow((void **)&w->lengths, &w->lengths_cap, w->sequences + 1, sizeof *w->lengths))
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot grow the index of %s", w->idx_path);
    size_t per_buffer = sizeof w->buffer / w->itemsize, used = 0;
    for (int64_t i = 0; i < count; i++) {
        if (!fits(w->dtype, tokens[i]))
            return tsr_error_set(TSR_ERR_INVALID_ARG, "token %d does not fit dtype %s of %s",
                                 (int)tokens[i], tsr_indexed_dtype_name((int)w->dtype),
                                 w->bin_path);
        encode(w->dtype, tokens[i], w->buffer + used * w->itemsize);
        if (++used == per_buffer || i + 1 == count) {
            if (fwrite(w->buffer, w->itemsize, used, w->bin) != used)
                return tsr_error_set(TSR_ERR_IO, "cannot write %s: %s", w->bin_path,
                                     strerror(errno));
            used = 0;
        }
    }
    w->lengths[w->sequences++] = (int32_t)count;
    return TSR_OK;
}

tsr_status tsr_indexed_writer_end_document(tsr_indexed_writer *w)
{
    if (!grow((void **)&w->docs, &w->docs_cap, w->doc_count + 1, sizeof *w->docs))
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot grow the index of %s", w->idx_path);
    w->docs[w->doc_count++] = w->sequences;
    return TSR_OK;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static tsr_status write_index(const tsr_indexed_writer *w)
{
    FILE *f = fopen(w->idx_path, "wb");
    if (f == NULL)
        return tsr_error_set(TSR_ERR_IO, "cannot create %s: %s", w->idx_path, strerror(errno));
    unsigned char header[TSR_INDEXED_HEADER_BYTES] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
    put_u64(header + 9, 1);
    header[17] = (unsigned char)w->dtype;
    put_u64(header + 18, (uint64_t)w->sequences);
    put_u64(header + 26, (uint64_t)w->doc_count);
    int ok = fwrite(header, 1, sizeof header, f) == sizeof header;
    unsigned char item[8];
    for (int64_t i = 0; ok && i < w->sequences; i++) {
        uint32_t len = (uint32_t)w->lengths[i];
        for (int b = 0; b < 4; b++)
            item[b] = (unsigned char)(len >> (8 * b));
        ok = fwrite(item, 1, 4, f) == 4;
    }
    uint64_t pointer = 0;
    for (int64_t i = 0; ok && i < w->sequences; i++) {
        put_u64(item, pointer);
        pointer += (uint64_t)w->lengths[i] * w->itemsize;
        ok = fwrite(item, 1, 8, f) == 8;
    }
    for (int64_t i = 0; ok && i < w->doc_count; i++) {
        put_u64(item, (uint64_t)w->docs[i]);
        ok = fwrite(item, 1, 8, f) == 8;
    }
    if (fclose(f) != 0)
        ok = 0;
    return ok ? TSR_OK
              : tsr_error_set(TSR_ERR_IO, "cannot write %s: %s", w->idx_path, strerror(errno));
}

tsr_status tsr_indexed_writer_finish(tsr_indexed_writer *w)
{
    tsr_status st = TSR_OK;
    if (fclose(w->bin) != 0)
        st = tsr_error_set(TSR_ERR_IO, "cannot write %s: %s", w->bin_path, strerror(errno));
    w->bin = NULL;
    if (st == TSR_OK)
        st = write_index(w);
    if (st != TSR_OK) {
        remove(w->bin_path);
        remove(w->idx_path);
    }
    writer_free(w);
    return st;
}

void tsr_indexed_writer_abort(tsr_indexed_writer *w)
{
    if (w == NULL)
        return;
    if (w->bin != NULL)
        fclose(w->bin);
    w->bin = NULL;
    remove(w->bin_path);
    remove(w->idx_path);
    writer_free(w);
}
