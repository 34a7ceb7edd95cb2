/*
 * indexed.c - reader of Megatron's MMIDIDX .bin/.idx pair (see indexed.h).
 *
 * Invariant after a successful open: every sequence's byte range
 * [pointer, pointer + length x itemsize) lies inside .bin, the document
 * indices run from 0 to S without going back, and every token is a whole
 * number in [0, vocab). Readers therefore never fault; read() re-checks
 * each token only as a guard against files rewritten under a running job.
 * All size arithmetic is done in uint64 with explicit overflow checks,
 * because every count in the header is hostile until proven otherwise.
 */
#include "indexed.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_check.h"
#include "tessera/log.h"

static const unsigned char idx_magic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};

struct tsr_indexed {
    tsr_token_source source; /* first: the source view casts back to the reader */
    char *name;              /* the prefix, for messages */
    const unsigned char *idx, *bin;
    size_t idx_size, bin_size;
    void *idx_map, *bin_map; /* non-NULL when open() mapped the files */
    int code;
    size_t itemsize;
    int64_t vocab_size;
    int64_t sequences, doc_count; /* doc_count: document indices (documents + 1) */
    int64_t total_tokens;
    const unsigned char *lengths, *pointers, *docs; /* unaligned arrays inside idx */
};

size_t tsr_indexed_dtype_size(int code)
{
    switch (code) {
    case TSR_INDEXED_UINT8:
    case TSR_INDEXED_INT8:
        return 1;
    case TSR_INDEXED_INT16:
    case TSR_INDEXED_UINT16:
        return 2;
    case TSR_INDEXED_INT32:
    case TSR_INDEXED_FLOAT32:
        return 4;
    case TSR_INDEXED_INT64:
    case TSR_INDEXED_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

const char *tsr_indexed_dtype_name(int code)
{
    static const char *const names[] = {"?",     "uint8",   "int8",    "int16", "int32",
                                        "int64", "float64", "float32", "uint16"};
    return code >= 1 && code <= 8 ? names[code] : "unknown";
}

tsr_indexed_dtype tsr_indexed_best_dtype(int64_t vocab_size)
{
    return vocab_size < 65500 ? TSR_INDEXED_UINT16 : TSR_INDEXED_INT32;
}

static uint64_t load_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) /* little-endian whatever the host */
        v = (v << 8) | p[i];
    return v;
}

static int64_t load_i64(const unsigned char *p)
{
    return (int64_t)load_u64(p);
}

static int32_t load_i32(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return (int32_t)v;
}

int tsr_indexed_dtype_code(const tsr_indexed *idx)
{
    return idx->code;
}

int64_t tsr_indexed_sequences(const tsr_indexed *idx)
{
    return idx->sequences;
}

int64_t tsr_indexed_documents(const tsr_indexed *idx)
{
    return idx->doc_count - 1;
}

int64_t tsr_indexed_document_start(const tsr_indexed *idx, int64_t doc)
{
    return load_i64(idx->docs + 8 * (size_t)doc);
}

int64_t tsr_indexed_length(const tsr_indexed *idx, int64_t seq)
{
    return load_i32(idx->lengths + 4 * (size_t)seq);
}

static int64_t sequence_pointer(const tsr_indexed *idx, int64_t seq)
{
    return load_i64(idx->pointers + 8 * (size_t)seq);
}

int64_t tsr_indexed_total_tokens(const tsr_indexed *idx)
{
    return idx->total_tokens;
}

/* Converts count tokens at p to int32 (into out when not NULL). Returns
 * the index of the first token that is not a whole number in [0, limit),
 * or -1; *bad receives its value. */
static int64_t convert_tokens(int code, size_t itemsize, const unsigned char *p, int64_t count,
                              int64_t limit, int32_t *out, double *bad)
{
#define CONVERT_INTEGER(T)                                                                    \
    for (int64_t i = 0; i < count; i++) {                                                     \
        T v;                                                                                  \
        memcpy(&v, p + (size_t)i * sizeof v, sizeof v);                                       \
        int64_t x = (int64_t)v;                                                               \
        if (x < 0 || x >= limit) {                                                            \
            *bad = (double)x;                                                                 \
            return i;                                                                         \
        }                                                                                     \
        if (out != NULL)                                                                      \
            out[i] = (int32_t)x;                                                              \
    }                                                                                         \
    return -1
#define CONVERT_FLOAT(T)                                                                      \
    for (int64_t i = 0; i < count; i++) {                                                     \
        T v;                                                                                  \
        memcpy(&v, p + (size_t)i * sizeof v, sizeof v);                                       \
        double d = (double)v;                                                                 \
        if (!(d >= 0.0 && d < (double)limit) || d != floor(d)) {                              \
            *bad = d;                                                                         \
            return i;                                                                         \
        }                                                                                     \
        if (out != NULL)                                                                      \
            out[i] = (int32_t)d;                                                              \
    }                                                                                         \
    return -1
    switch (code) {
    case TSR_INDEXED_UINT8:
        CONVERT_INTEGER(uint8_t);
    case TSR_INDEXED_INT8:
        CONVERT_INTEGER(int8_t);
    case TSR_INDEXED_INT16:
        CONVERT_INTEGER(int16_t);
    case TSR_INDEXED_UINT16:
        CONVERT_INTEGER(uint16_t);
    case TSR_INDEXED_INT32:
        CONVERT_INTEGER(int32_t);
    case TSR_INDEXED_INT64:
        CONVERT_INTEGER(int64_t);
    case TSR_INDEXED_FLOAT32:
        if (itemsize == 4) {
            CONVERT_FLOAT(float);
        }
        CONVERT_FLOAT(double); /* fairseq-era code 7 */
    case TSR_INDEXED_FLOAT64:
        CONVERT_FLOAT(double);
    default:
        *bad = 0.0;
        return 0;
    }
#undef CONVERT_INTEGER
#undef CONVERT_FLOAT
}

static int64_t token_limit(const tsr_indexed *idx)
{
    return idx->vocab_size > 0 ? idx->vocab_size : (int64_t)INT32_MAX + 1;
}

static tsr_status bad_token_error(const tsr_indexed *idx, int64_t seq, int64_t pos, double v)
{
    if (v != floor(v) || !isfinite(v))
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.bin: token %g at sequence %lld, position %lld is not a whole "
                             "number; the %s tokens of this file must hold integer ids",
                             idx->name, v, (long long)seq, (long long)pos,
                             tsr_indexed_dtype_name(idx->code));
    if (idx->vocab_size > 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.bin: token %.0f at sequence %lld, position %lld is outside the "
                             "vocabulary [0, %lld); give the --vocab-size the data was "
                             "tokenized with",
                             idx->name, v, (long long)seq, (long long)pos,
                             (long long)idx->vocab_size);
    return tsr_error_set(TSR_ERR_FORMAT,
                         "%s.bin: token %.0f at sequence %lld, position %lld is not a token id "
                         "(ids are 0 to 2^31-1)",
                         idx->name, v, (long long)seq, (long long)pos);
}

tsr_status tsr_indexed_read(const tsr_indexed *idx, int64_t seq, int64_t offset, int64_t count,
                            int32_t *out)
{
    if (seq < 0 || seq >= idx->sequences || offset < 0 || count < 0 ||
        offset > tsr_indexed_length(idx, seq) - count)
        return tsr_error_set(TSR_ERR_INTERNAL,
                             "%s: read of tokens %lld..+%lld of sequence %lld is out of range",
                             idx->name, (long long)offset, (long long)count, (long long)seq);
    if (count == 0)
        return TSR_OK; /* an empty .bin is mapped as NULL: no arithmetic on it */
    const unsigned char *p =
        idx->bin + (size_t)sequence_pointer(idx, seq) + (size_t)offset * idx->itemsize;
    double bad = 0.0;
    int64_t at = convert_tokens(idx->code, idx->itemsize, p, count, token_limit(idx), out, &bad);
    return at < 0 ? TSR_OK : bad_token_error(idx, seq, offset + at, bad);
}

/* Validates the header and the three arrays; sets the array pointers. */
static tsr_status check_index(tsr_indexed *idx)
{
    const char *name = idx->name;
    const unsigned char *p = idx->idx;
    if (idx->idx_size < TSR_INDEXED_HEADER_BYTES)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx is %zu bytes, shorter than the %d-byte MMIDIDX header: "
                             "the file is truncated or not a Megatron index",
                             name, idx->idx_size, TSR_INDEXED_HEADER_BYTES);
    if (memcmp(p, idx_magic, sizeof idx_magic) != 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx does not start with the magic \"MMIDIDX\\0\\0\": it is not "
                             "a Megatron memory-mapped index (the older lazy/cached formats "
                             "are not read; re-run preprocessing)",
                             name);
    uint64_t version = load_u64(p + 9);
    if (version != 1)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx has index version %llu; only version 1 exists", name,
                             (unsigned long long)version);
    idx->code = p[17];
    idx->itemsize = tsr_indexed_dtype_size(idx->code);
    if (idx->itemsize == 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx has dtype code %d; known codes are 1 uint8, 2 int8, "
                             "3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16",
                             name, idx->code);
    uint64_t s = load_u64(p + 18), d = load_u64(p + 26);
    uint64_t room = idx->idx_size - TSR_INDEXED_HEADER_BYTES;
    if (s > room / 12 || d > (room - 12 * s) / 8)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx declares %llu sequences and %llu document indices, which "
                             "need more than its %zu bytes: the file is truncated",
                             name, (unsigned long long)s, (unsigned long long)d, idx->idx_size);
    uint64_t used = TSR_INDEXED_HEADER_BYTES + 12 * s + 8 * d;
    if (idx->idx_size != used && idx->idx_size != used + s)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx has %llu bytes after its %llu sequences and %llu document "
                             "indices (expected 0, or %llu sequence modes): the counts are "
                             "wrong or the file is damaged",
                             name, (unsigned long long)(idx->idx_size - used),
                             (unsigned long long)s, (unsigned long long)d,
                             (unsigned long long)s);
    idx->sequences = (int64_t)s;
    idx->doc_count = (int64_t)d;
    idx->lengths = p + TSR_INDEXED_HEADER_BYTES;
    idx->pointers = idx->lengths + 4 * s;
    idx->docs = idx->pointers + 8 * s;
    if (d < 1 || tsr_indexed_document_start(idx, 0) != 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx: the document indices must start with 0 (found %s)", name,
                             d < 1 ? "none" : "another value");
    for (int64_t i = 1; i < idx->doc_count; i++) {
        int64_t prev = tsr_indexed_document_start(idx, i - 1);
        int64_t cur = tsr_indexed_document_start(idx, i);
        if (cur < prev || cur > idx->sequences)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "%s.idx: document index %lld is %lld after %lld; document "
                                 "indices must not decrease nor pass the %lld sequences",
                                 name, (long long)i, (long long)cur, (long long)prev,
                                 (long long)idx->sequences);
    }
    int64_t last = tsr_indexed_document_start(idx, idx->doc_count - 1);
    if (last != idx->sequences)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s.idx: the last document index is %lld but the file holds %lld "
                             "sequences; they must be equal",
                             name, (long long)last, (long long)idx->sequences);
    return TSR_OK;
}

/* Checks lengths and pointers against .bin; sums the tokens. */
static tsr_status check_sequences(tsr_indexed *idx)
{
    int64_t total = 0;
    for (int64_t i = 0; i < idx->sequences; i++) {
        int64_t len = tsr_indexed_length(idx, i);
        if (len < 0)
            return tsr_error_set(TSR_ERR_FORMAT, "%s.idx: sequence %lld has length %lld",
                                 idx->name, (long long)i, (long long)len);
        if (total > INT64_MAX - len)
            return tsr_error_set(TSR_ERR_FORMAT, "%s.idx: the sequence lengths overflow",
                                 idx->name);
        total += len;
    }
    idx->total_tokens = total;
    if (idx->code == TSR_INDEXED_FLOAT32 && total > 0 && (uint64_t)total <= SIZE_MAX / 8 &&
        idx->bin_size == (size_t)total * 8) {
        idx->itemsize = 8;
        tsr_log_once(TSR_LOG_INFO,
                     "%s: dtype code 7 with 8 bytes per token: read as float64, the meaning "
                     "of code 7 in fairseq-era writers",
                     idx->name);
    }
    for (int64_t i = 0; i < idx->sequences; i++) {
        int64_t ptr = sequence_pointer(idx, i);
        uint64_t len = (uint64_t)tsr_indexed_length(idx, i);
        if (ptr < 0 || (uint64_t)ptr > idx->bin_size ||
            len > (idx->bin_size - (uint64_t)ptr) / idx->itemsize)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "%s: sequence %lld (%llu tokens of %zu bytes at byte %lld) "
                                 "runs outside the %zu bytes of %s.bin: the .bin is truncated "
                                 "or the pointers are wrong",
                                 idx->name, (long long)i, (unsigned long long)len,
                                 idx->itemsize, (long long)ptr, idx->bin_size, idx->name);
    }
    return TSR_OK;
}

static tsr_status scan_tokens(const tsr_indexed *idx)
{
    int64_t limit = token_limit(idx);
    if ((idx->code == TSR_INDEXED_UINT8 && limit >= 256) ||
        (idx->code == TSR_INDEXED_UINT16 && limit >= 65536))
        return TSR_OK;
    for (int64_t i = 0; i < idx->sequences; i++) {
        int64_t len = tsr_indexed_length(idx, i);
        if (len == 0)
            continue;
        const unsigned char *p = idx->bin + (size_t)sequence_pointer(idx, i);
        double bad = 0.0;
        int64_t at = convert_tokens(idx->code, idx->itemsize, p, len, limit, NULL, &bad);
        if (at >= 0)
            return bad_token_error(idx, i, at, bad);
    }
    return TSR_OK;
}

static int64_t source_length(const tsr_token_source *src, int64_t doc)
{
    return tsr_indexed_length((const tsr_indexed *)(const void *)src, doc);
}

static tsr_status source_read(const tsr_token_source *src, int64_t doc, int64_t offset,
                              int64_t count, int32_t *out)
{
    return tsr_indexed_read((const tsr_indexed *)(const void *)src, doc, offset, count, out);
}

static void source_destroy(tsr_token_source *src)
{
    tsr_indexed_close((tsr_indexed *)(void *)src);
}

static const tsr_token_source_ops source_ops = {source_length, source_read, source_destroy,
                                                NULL};

tsr_token_source *tsr_indexed_source(tsr_indexed *idx)
{
    return &idx->source;
}

static tsr_status create(const char *name, int64_t vocab_size, tsr_indexed **out)
{
    tsr_indexed *idx = calloc(1, sizeof *idx);
    char *copy = strdup(name);
    if (idx == NULL || copy == NULL) {
        free(idx);
        free(copy);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the reader of %s", name);
    }
    idx->name = copy;
    idx->vocab_size = vocab_size;
    idx->source.ops = &source_ops;
    idx->source.name = copy;
    *out = idx;
    return TSR_OK;
}

static tsr_status validate(tsr_indexed *idx)
{
    tsr_status st = check_index(idx);
    if (st == TSR_OK)
        st = check_sequences(idx);
    if (st == TSR_OK)
        st = scan_tokens(idx);
    idx->source.documents = idx->sequences;
    return st;
}

tsr_status tsr_indexed_open_memory(const char *name, const void *idx_bytes, size_t idx_size,
                                   const void *bin, size_t bin_size, int64_t vocab_size,
                                   tsr_indexed **out)
{
    *out = NULL;
    tsr_indexed *idx = NULL;
    tsr_status st = create(name, vocab_size, &idx);
    if (st != TSR_OK)
        return st;
    idx->idx = idx_bytes;
    idx->idx_size = idx_size;
    idx->bin = bin;
    idx->bin_size = bin_size;
    st = validate(idx);
    if (st != TSR_OK) {
        tsr_indexed_close(idx);
        return st;
    }
    *out = idx;
    return TSR_OK;
}

/* Maps a whole file read-only; an empty file maps to (NULL, 0). */
static tsr_status map_file(const char *path, void **map, size_t *size)
{
    *map = NULL;
    *size = 0;
    int fd = -1;
    tsr_status st = tsr_file_open_input(path, NULL, &fd);
    if (st != TSR_OK)
        return st;
    struct stat info;
    if (fstat(fd, &info) != 0) {
        st = tsr_error_set(TSR_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    } else if (info.st_size > 0) {
        void *m = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            st = tsr_error_set(TSR_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        else {
            *map = m;
            *size = (size_t)info.st_size;
        }
    }
    close(fd);
    return st;
}

tsr_status tsr_indexed_open(const char *prefix, int64_t vocab_size, tsr_indexed **out)
{
    *out = NULL;
    tsr_indexed *idx = NULL;
    tsr_status st = create(prefix, vocab_size, &idx);
    if (st != TSR_OK)
        return st;
    size_t n = strlen(prefix) + 5;
    char *path = malloc(n);
    if (path == NULL) {
        tsr_indexed_close(idx);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a path");
    }
    snprintf(path, n, "%s.idx", prefix);
    st = map_file(path, &idx->idx_map, &idx->idx_size);
    if (st == TSR_OK) {
        snprintf(path, n, "%s.bin", prefix);
        st = map_file(path, &idx->bin_map, &idx->bin_size);
    }
    free(path);
    if (st == TSR_ERR_IO || st == TSR_ERR_INVALID_ARG) {
        char why[1024];
        snprintf(why, sizeof why, "%s", tsr_last_error());
        st = tsr_error_set(st,
                           "%s (a .bin/.idx dataset is named by its PREFIX: PREFIX.bin and "
                           "PREFIX.idx must both exist)",
                           why);
    }
    if (st == TSR_OK) {
        idx->idx = idx->idx_map;
        idx->bin = idx->bin_map;
        st = validate(idx);
    }
    if (st != TSR_OK) {
        tsr_indexed_close(idx);
        return st;
    }
    *out = idx;
    return TSR_OK;
}

void tsr_indexed_close(tsr_indexed *idx)
{
    if (idx == NULL)
        return;
    if (idx->idx_map != NULL)
        munmap(idx->idx_map, idx->idx_size);
    if (idx->bin_map != NULL)
        munmap(idx->bin_map, idx->bin_size);
    free(idx->name);
    free(idx);
}
