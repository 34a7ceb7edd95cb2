/*
 * safetensors.c - see safetensors.h.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as host floats"
#endif

#define READ_CHUNK ((size_t)4 << 20) /* raw bytes converted per read */

static const struct {
    const char *name;
    tsr_st_dtype dtype;
    size_t size;
} dtypes[] = {{"F32", TSR_ST_F32, 4}, {"F16", TSR_ST_F16, 2}, {"BF16", TSR_ST_BF16, 2}};

size_t tsr_st_dtype_size(tsr_st_dtype dtype)
{
    return dtypes[dtype].size;
}

const char *tsr_st_dtype_name(tsr_st_dtype dtype)
{
    return dtypes[dtype].name;
}

static void free_tensors(tsr_st_file *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->count = 0;
}

void tsr_st_close(tsr_st_file *f)
{
    if (f == NULL)
        return;
    free_tensors(f);
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

static tsr_status bad(const char *name, const char *tensor, const char *fmt, const char *what)
{
    char detail[512];
    snprintf(detail, sizeof detail, fmt, what);
    if (tensor != NULL)
        return tsr_error_set(TSR_ERR_FORMAT, "%s: tensor %s: %s (a damaged or foreign file?)", name,
                             tensor, detail);
    return tsr_error_set(TSR_ERR_FORMAT, "%s: %s (a damaged or foreign file?)", name, detail);
}

/* A non-negative JSON integer; -1 when it is not one. */
static int64_t json_count(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (int64_t)json_integer_value(v);
}

static tsr_status parse_tensor(const char *file, const char *key, json_t *v, uint64_t data_size,
                               tsr_st_tensor *t)
{
    if (!json_is_object(v))
        return bad(file, key, "its header entry is not an object%s", "");
    json_t *dtype = json_object_get(v, "dtype");
    json_t *shape = json_object_get(v, "shape");
    json_t *offsets = json_object_get(v, "data_offsets");
    if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets))
        return bad(file, key,
                   "its entry lacks a string dtype, an array shape or an array "
                   "data_offsets%s",
                   "");
    size_t d = 0;
    for (; d < sizeof dtypes / sizeof dtypes[0]; d++)
        if (strcmp(json_string_value(dtype), dtypes[d].name) == 0)
            break;
    if (d == sizeof dtypes / sizeof dtypes[0])
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: tensor %s has dtype %.32s; tessera reads F32, F16 and BF16 "
                             "weights (convert the file with transformers' torch_dtype first)",
                             file, key, json_string_value(dtype));
    t->dtype = dtypes[d].dtype;
    if (json_array_size(shape) > TSR_ST_MAX_DIMS)
        return bad(file, key, "its shape has more than 8 dimensions%s", "");
    t->ndim = (int)json_array_size(shape);
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t n = json_count(json_array_get(shape, (size_t)i));
        if (n < 0)
            return bad(file, key, "its shape holds %s other than a non-negative integer",
                       "a value");
        t->shape[i] = n;
        if (n != 0 && numel > INT64_MAX / 8 / n)
            return bad(file, key, "its shape is too large for any file%s", "");
        numel *= n;
    }
    t->numel = numel;
    int64_t begin = json_array_size(offsets) == 2 ? json_count(json_array_get(offsets, 0)) : -1;
    int64_t end = json_array_size(offsets) == 2 ? json_count(json_array_get(offsets, 1)) : -1;
    if (begin < 0 || end < 0)
        return bad(file, key, "its data_offsets are not two non-negative integers%s", "");
    if (begin > end || (uint64_t)end > data_size) {
        char what[128];
        snprintf(what, sizeof what, "[%lld, %lld] outside the %llu bytes of data", (long long)begin,
                 (long long)end, (unsigned long long)data_size);
        return bad(file, key, "its data_offsets %s (a truncated file?)", what);
    }
    uint64_t want = (uint64_t)numel * tsr_st_dtype_size(t->dtype);
    if ((uint64_t)(end - begin) != want) {
        char what[160];
        snprintf(what, sizeof what, "%lld bytes where its shape and dtype need %llu",
                 (long long)(end - begin), (unsigned long long)want);
        return bad(file, key, "its data range holds %s", what);
    }
    t->begin = (uint64_t)begin;
    t->end = (uint64_t)end;
    t->name = strdup(key);
    return t->name != NULL ? TSR_OK : tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
}

static int by_begin(const void *a, const void *b)
{
    const tsr_st_tensor *x = *(const tsr_st_tensor *const *)a,
                        *y = *(const tsr_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* No two tensors share a byte (empty tensors share none). */
static tsr_status check_overlaps(const tsr_st_file *f, const char *name)
{
    if (f->count < 2)
        return TSR_OK;
    const tsr_st_tensor **order = malloc(f->count * sizeof *order);
    if (order == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", name);
    for (size_t i = 0; i < f->count; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->count, sizeof *order, by_begin);
    tsr_status st = TSR_OK;
    const tsr_st_tensor *last = NULL;
    for (size_t i = 0; i < f->count && st == TSR_OK; i++) {
        if (order[i]->begin == order[i]->end)
            continue;
        if (last != NULL && order[i]->begin < last->end)
            st = tsr_error_set(TSR_ERR_FORMAT,
                               "%s: the data of tensors %s and %s overlap (bytes %llu-%llu and "
                               "%llu-%llu of the data section); a damaged or hand-made file",
                               name, last->name, order[i]->name, (unsigned long long)last->begin,
                               (unsigned long long)last->end, (unsigned long long)order[i]->begin,
                               (unsigned long long)order[i]->end);
        last = order[i];
    }
    free(order);
    return st;
}

tsr_status tsr_st_parse_header(const char *json, size_t len, uint64_t data_size, const char *name,
                               tsr_st_file *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: its header is not valid JSON (%s, at byte %d of the header); "
                             "a damaged or foreign file?",
                             name, err.text, err.position);
    tsr_status st = TSR_OK;
    if (!json_is_object(root))
        st = bad(name, NULL, "its header is not a JSON object%s", "");
    size_t n = st == TSR_OK ? json_object_size(root) : 0;
    if (n > 0 && (out->tensors = calloc(n, sizeof *out->tensors)) == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", name);
    const char *key;
    json_t *value;
    if (st == TSR_OK) {
        json_object_foreach(root, key, value)
        {
            if (strcmp(key, "__metadata__") == 0) {
                if (!json_is_object(value))
                    st = bad(name, NULL, "its __metadata__ is not an object%s", "");
            } else {
                st = parse_tensor(name, key, value, data_size, &out->tensors[out->count]);
                if (out->tensors[out->count].name != NULL)
                    out->count++;
            }
            if (st != TSR_OK)
                break;
        }
    }
    json_decref(root);
    if (st == TSR_OK)
        st = check_overlaps(out, name);
    out->data_size = data_size;
    if (st == TSR_OK && (out->path = strdup(name)) == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", name);
    if (st != TSR_OK)
        tsr_st_close(out);
    return st;
}

static uint64_t le64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

/* The header length after checking it against the file's size. */
static tsr_status header_length(const uint8_t first[8], uint64_t file_size, const char *name,
                                uint64_t *length)
{
    if (file_size < 8)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s has %llu bytes, fewer than a safetensors header length (8); "
                             "a truncated or foreign file",
                             name, (unsigned long long)file_size);
    uint64_t n = le64(first);
    if (n < 2 || n > TSR_ST_MAX_HEADER || n > file_size - 8)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: its header length is %llu bytes, but the file has %llu bytes "
                             "after the length and headers are at most %llu; a truncated or "
                             "foreign file (not safetensors?)",
                             name, (unsigned long long)n, (unsigned long long)(file_size - 8),
                             (unsigned long long)TSR_ST_MAX_HEADER);
    *length = n;
    return TSR_OK;
}

tsr_status tsr_st_parse_bytes(const uint8_t *bytes, size_t len, const char *name, tsr_st_file *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    uint8_t first[8] = {0};
    memcpy(first, bytes, len < 8 ? len : 8);
    uint64_t n = 0;
    tsr_status st = header_length(first, len, name, &n);
    if (st != TSR_OK)
        return st;
    st = tsr_st_parse_header((const char *)bytes + 8, (size_t)n, len - 8 - n, name, out);
    out->data_start = 8 + n;
    return st;
}

tsr_status tsr_st_open(const char *path, tsr_st_file *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tsr_error_set(errno == ENOENT ? TSR_ERR_INVALID_ARG : TSR_ERR_IO,
                             "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    uint8_t first[8];
    uint64_t n = 0;
    tsr_status st = TSR_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = tsr_error_set(TSR_ERR_INVALID_ARG, "%s is not a regular file", path);
    if (st == TSR_OK && sb.st_size >= 8 && pread(fd, first, 8, 0) != 8)
        st = tsr_error_set(TSR_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (st == TSR_OK)
        st = header_length(first, (uint64_t)sb.st_size, path, &n);
    char *json = st == TSR_OK ? malloc((size_t)n) : NULL;
    if (st == TSR_OK && json == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    if (st == TSR_OK && pread(fd, json, (size_t)n, 8) != (ssize_t)n)
        st = tsr_error_set(TSR_ERR_IO, "cannot read the header of %s", path);
    if (st == TSR_OK)
        st = tsr_st_parse_header(json, (size_t)n, (uint64_t)sb.st_size - 8 - n, path, out);
    free(json);
    if (st != TSR_OK) {
        close(fd);
        return st;
    }
    out->fd = fd;
    out->data_start = 8 + n;
    return TSR_OK;
}

const tsr_st_tensor *tsr_st_find(const tsr_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

/* IEEE half to single, exactly: normals, subnormals, infinities, NaNs. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while ((man & 0x400) == 0);
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void tsr_st_to_f32(tsr_st_dtype dtype, const uint8_t *src, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        switch (dtype) {
        case TSR_ST_F32:
            memcpy(&out[i], src + 4 * i, 4);
            break;
        case TSR_ST_F16:
            out[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
            break;
        case TSR_ST_BF16:
            bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, 4);
            break;
        }
    }
}

tsr_status tsr_st_read_f32(const tsr_st_file *f, const tsr_st_tensor *t, float *out)
{
    size_t esize = tsr_st_dtype_size(t->dtype);
    size_t per_chunk = READ_CHUNK / esize;
    uint8_t *raw = malloc(READ_CHUNK);
    if (raw == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", f->path);
    tsr_status st = TSR_OK;
    for (int64_t done = 0; done < t->numel && st == TSR_OK;) {
        int64_t n = t->numel - done < (int64_t)per_chunk ? t->numel - done : (int64_t)per_chunk;
        size_t bytes = (size_t)n * esize;
        off_t at = (off_t)(f->data_start + t->begin + (uint64_t)done * esize);
        ssize_t got = pread(f->fd, raw, bytes, at);
        if (got != (ssize_t)bytes)
            st = tsr_error_set(TSR_ERR_IO, "cannot read tensor %s from %s: %s", t->name, f->path,
                               got < 0 ? strerror(errno) : "the file ends early");
        else
            tsr_st_to_f32(t->dtype, raw, n, out + done);
        done += n;
    }
    free(raw);
    return st;
}

/* The header: tensors in data order, then padded with spaces to a
 * multiple of 8 bytes, as the reference writer aligns the data. */
static char *build_header(const tsr_st_out *tensors, size_t count, size_t *len)
{
    json_t *root = json_object();
    json_t *meta = json_pack("{s:s}", "format", "pt");
    if (root == NULL || meta == NULL || json_object_set_new(root, "__metadata__", meta) != 0) {
        json_decref(root);
        return NULL;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const tsr_st_out *t = &tensors[i];
        uint64_t bytes = 4;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) {
            json_array_append_new(shape, json_integer(t->shape[d]));
            bytes *= (uint64_t)t->shape[d];
        }
        json_t *entry = json_pack("{s:s,s:o,s:[I,I]}", "dtype", "F32", "shape", shape,
                                  "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes));
        if (entry == NULL || json_object_set_new(root, t->name, entry) != 0) {
            json_decref(root);
            return NULL;
        }
        offset += bytes;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *len = padded;
    return out;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

tsr_status tsr_st_write(const char *path, const tsr_st_out *tensors, size_t count)
{
    size_t hlen = 0;
    char *header = build_header(tensors, count, &hlen);
    if (header == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(header);
        return tsr_error_set(TSR_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    }
    uint8_t first[8];
    for (int i = 0; i < 8; i++)
        first[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int err = write_all(fd, first, 8) || write_all(fd, header, hlen);
    free(header);
    for (size_t i = 0; i < count && !err; i++) {
        size_t n = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            n *= (size_t)tensors[i].shape[d];
        err = write_all(fd, tensors[i].data, n * sizeof(float));
    }
    int saved = errno;
    if (!err && fsync(fd) != 0) {
        err = 1;
        saved = errno;
    }
    if (close(fd) != 0 && !err) {
        err = 1;
        saved = errno;
    }
    if (!err && rename(tmp, path) != 0) {
        err = 1;
        saved = errno;
    }
    if (err) {
        unlink(tmp);
        return tsr_error_set(TSR_ERR_IO, "cannot write %s: %s", path, strerror(saved));
    }
    return TSR_OK;
}
