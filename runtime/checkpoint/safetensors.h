/*
 * safetensors.h - reading and writing the safetensors format (Hugging
 * Face): an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}), then the data section, each tensor's
 * bytes row-major little-endian at [begin, end) from the section's start.
 *
 * A file is hostile input: the header is parsed with jansson and every
 * field checked (types, a header within the file, ranges inside the data
 * section, no two ranges overlapping, each range exactly its tensor's
 * bytes) before any tensor is read, and every failure is TSR_ERR_FORMAT
 * with a message naming the file and the tensor. Reading converts F32,
 * F16 and BF16 to fp32 (exactly); writing writes F32.
 */
#ifndef TSR_RUNTIME_SAFETENSORS_H
#define TSR_RUNTIME_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

#define TSR_ST_MAX_DIMS 8
/* The format's own limit on the header (the Python and Rust readers'). */
#define TSR_ST_MAX_HEADER ((uint64_t)100 << 20)

typedef enum tsr_st_dtype { TSR_ST_F32, TSR_ST_F16, TSR_ST_BF16 } tsr_st_dtype;

typedef struct tsr_st_tensor {
    char *name;
    tsr_st_dtype dtype;
    int ndim;
    int64_t shape[TSR_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* in the data section */
} tsr_st_tensor;

typedef struct tsr_st_file {
    char *path;          /* for messages */
    int fd;              /* -1 for a header parsed from memory */
    uint64_t data_start; /* 8 + header length */
    uint64_t data_size;  /* bytes after the header */
    size_t count;
    tsr_st_tensor *tensors;
} tsr_st_file;

/* Bytes of one element. */
size_t tsr_st_dtype_size(tsr_st_dtype dtype);
const char *tsr_st_dtype_name(tsr_st_dtype dtype);

/* Parses and checks `len` bytes of header JSON for a data section of
 * data_size bytes; name is the file for messages. *out is empty on error. */
tsr_status tsr_st_parse_header(const char *json, size_t len, uint64_t data_size, const char *name,
                               tsr_st_file *out);

/* Parses a whole file held in memory (the fuzz target's entry). */
tsr_status tsr_st_parse_bytes(const uint8_t *bytes, size_t len, const char *name, tsr_st_file *out);

/* Opens path and parses its header; the file stays open for reads. */
tsr_status tsr_st_open(const char *path, tsr_st_file *out);
void tsr_st_close(tsr_st_file *f);

/* The tensor called name, or NULL. */
const tsr_st_tensor *tsr_st_find(const tsr_st_file *f, const char *name);

/* t's elements as fp32 into out[t->numel], from the open file. */
tsr_status tsr_st_read_f32(const tsr_st_file *f, const tsr_st_tensor *t, float *out);

/* Converts n elements of raw little-endian data of dtype to fp32. */
void tsr_st_to_f32(tsr_st_dtype dtype, const uint8_t *src, int64_t n, float *out);

/* A tensor to write: fp32, row-major, ndim 1 or 2. */
typedef struct tsr_st_out {
    const char *name;
    int ndim;
    int64_t shape[2];
    const float *data;
} tsr_st_out;

/* Writes path atomically (path.tmp, fsync, rename): the tensors in the
 * order given, which is also their data order, and the header's metadata
 * {"format": "pt"} (what transformers expects). Deterministic: the same
 * tensors give the same bytes. */
tsr_status tsr_st_write(const char *path, const tsr_st_out *tensors, size_t count);

#endif /* TSR_RUNTIME_SAFETENSORS_H */
