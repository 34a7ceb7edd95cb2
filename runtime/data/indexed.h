/*
 * indexed.h - Megatron's memory-mapped indexed dataset (MMIDIDX): PREFIX.bin
 * holds the tokens of every sequence back to back, PREFIX.idx the index.
 *
 * .idx layout (little-endian; see docs/data-format.md):
 *   0   9 bytes  magic "MMIDIDX\0\0"
 *   9   uint64   version, 1
 *   17  uint8    dtype code of the tokens in .bin (tsr_indexed_dtype)
 *   18  uint64   S, number of sequences
 *   26  uint64   D, number of document indices (documents + 1)
 *   34  int32[S] sequence lengths, in tokens
 *       int64[S] sequence pointers, byte offsets into .bin
 *       int64[D] document indices: 0, then the sequence count after each
 *                document (non-decreasing, last == S)
 *       int8[S]  sequence modes, only in multimodal files (ignored)
 *
 * Opening validates everything a hostile file could get wrong (magic,
 * version, dtype, counts against the file size, pointer ranges, document
 * indices) and scans every token once against the vocabulary, so that a
 * bad file is reported before training starts, on every rank alike, rather
 * than on one data-parallel rank mid-run while its peers wait in a
 * collective. The scan is skipped when the dtype cannot exceed the
 * vocabulary (uint8 with >= 256 ids, uint16 with >= 65536). Nothing is
 * copied: both files are mapped read-only and shared by every rank of a
 * node through the page cache. Fields are read with memcpy because the
 * 34-byte header leaves the arrays unaligned.
 *
 * Called by blend.c (training), cmd_preprocess.c (the writer), the tests
 * and tests/fuzz/fuzz_indexed.c.
 */
#ifndef TSR_RUNTIME_INDEXED_H
#define TSR_RUNTIME_INDEXED_H

#include <stddef.h>
#include <stdint.h>

#include "gpt_samples.h"
#include "tessera/status.h"

/* Megatron-core's DType table (megatron/core/datasets/indexed_dataset.py).
 * Code 7 meant float64 (numpy.double) in the fairseq-era writers; a file
 * whose .bin holds exactly 8 bytes per token under code 7 is read that
 * way. Floating-point tokens must hold whole numbers. */
typedef enum tsr_indexed_dtype {
    TSR_INDEXED_UINT8 = 1,
    TSR_INDEXED_INT8 = 2,
    TSR_INDEXED_INT16 = 3,
    TSR_INDEXED_INT32 = 4,
    TSR_INDEXED_INT64 = 5,
    TSR_INDEXED_FLOAT64 = 6,
    TSR_INDEXED_FLOAT32 = 7,
    TSR_INDEXED_UINT16 = 8
} tsr_indexed_dtype;

#define TSR_INDEXED_HEADER_BYTES 34

/* Bytes per token of a dtype code; 0 for an unknown code. */
size_t tsr_indexed_dtype_size(int code);
const char *tsr_indexed_dtype_name(int code);

/* Megatron's optimal_dtype: uint16 below 65500 ids, int32 otherwise. */
tsr_indexed_dtype tsr_indexed_best_dtype(int64_t vocab_size);

typedef struct tsr_indexed tsr_indexed;

/* Maps PREFIX.idx and PREFIX.bin. vocab_size > 0 checks every token
 * against it; 0 accepts any value that fits an int32. Errors: TSR_ERR_IO
 * (a file cannot be opened or mapped), TSR_ERR_FORMAT (anything wrong
 * inside), each naming the file. */
tsr_status tsr_indexed_open(const char *prefix, int64_t vocab_size, tsr_indexed **out);

/* The same over caller-owned buffers (borrowed until close); `name` is the
 * prefix used in messages. The fuzz target's entry point. */
tsr_status tsr_indexed_open_memory(const char *name, const void *idx, size_t idx_size,
                                   const void *bin, size_t bin_size, int64_t vocab_size,
                                   tsr_indexed **out);
void tsr_indexed_close(tsr_indexed *idx);

int tsr_indexed_dtype_code(const tsr_indexed *idx);
int64_t tsr_indexed_sequences(const tsr_indexed *idx);
int64_t tsr_indexed_documents(const tsr_indexed *idx);
/* Sequence index at which document `doc` starts (0 <= doc <= documents). */
int64_t tsr_indexed_document_start(const tsr_indexed *idx, int64_t doc);
int64_t tsr_indexed_length(const tsr_indexed *idx, int64_t seq);
int64_t tsr_indexed_total_tokens(const tsr_indexed *idx);

/* out[0..count) = tokens offset..offset+count of sequence `seq`. */
tsr_status tsr_indexed_read(const tsr_indexed *idx, int64_t seq, int64_t offset, int64_t count,
                            int32_t *out);

/* The reader as a token source whose documents are its sequences (what
 * Megatron's GPTDataset packs). Closing the source closes the reader. */
tsr_token_source *tsr_indexed_source(tsr_indexed *idx);

/* Writes PREFIX.bin and PREFIX.idx as Megatron's IndexedDatasetBuilder
 * does: sequences appended in order, a document closed by end_document. */
typedef struct tsr_indexed_writer tsr_indexed_writer;

tsr_status tsr_indexed_writer_open(const char *prefix, tsr_indexed_dtype dtype,
                                   tsr_indexed_writer **out);
/* Appends one sequence (it may be empty). Tokens must fit the dtype. */
tsr_status tsr_indexed_writer_add(tsr_indexed_writer *w, const int32_t *tokens, int64_t count);
tsr_status tsr_indexed_writer_end_document(tsr_indexed_writer *w);
/* Writes the index, closes both files and frees the writer. */
tsr_status tsr_indexed_writer_finish(tsr_indexed_writer *w);
/* Closes, removes both files and frees the writer (after an error). */
void tsr_indexed_writer_abort(tsr_indexed_writer *w);

#endif /* TSR_RUNTIME_INDEXED_H */
