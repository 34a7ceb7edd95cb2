/*
 * hdf5_tokens.h - token datasets stored in HDF5, tessera's second on-disk
 * dataset format (docs/data-format.md).
 *
 * Layout of a file FILE.h5 (or .hdf5):
 *   /tokens            1-D, any HDF5 integer type: every document's tokens
 *                      back to back
 *   /document_offsets  1-D, any integer type, D+1 entries: document d is
 *                      tokens[offsets[d] .. offsets[d+1]); offsets[0] == 0,
 *                      non-decreasing, offsets[D] == length of /tokens
 * Anything else in the file is ignored. h5py writes one with
 *   f["tokens"] = ids; f["document_offsets"] = offsets
 *
 * Opening reads the offsets (8 bytes per document) and scans every token
 * against the vocabulary, for the reasons given in indexed.h; samples are
 * then read as hyperslabs of /tokens. Each rank opens the file read-only
 * on its own (serial HDF5 driver): nothing is communicated. Called by
 * blend.c and the tests.
 */
#ifndef TSR_RUNTIME_HDF5_TOKENS_H
#define TSR_RUNTIME_HDF5_TOKENS_H

#include <stdint.h>

#include "gpt_samples.h"
#include "tessera/status.h"

/* True if `path` names an HDF5 token file (ends in .h5 or .hdf5). */
int tsr_hdf5_tokens_is_path(const char *path);

/* Opens `path` as a token source. Errors: TSR_ERR_INVALID_ARG when the
 * path does not exist, is not a regular file (a FIFO, a directory) or a
 * dataset needs an HDF5 filter this libhdf5 lacks; TSR_ERR_IO when the
 * file cannot be read; TSR_ERR_FORMAT when it is not HDF5 or breaks the
 * layout. */
tsr_status tsr_hdf5_tokens_open(const char *path, int64_t vocab_size, tsr_token_source **out);

/* Writes the layout above: `documents` documents whose boundaries are
 * offsets[0..documents], tokens stored as uint16 below 65500 ids and int32
 * otherwise (the dtype Megatron would pick). */
tsr_status tsr_hdf5_tokens_write(const char *path, const int32_t *tokens, const int64_t *offsets,
                                 int64_t documents, int64_t vocab_size);

#endif /* TSR_RUNTIME_HDF5_TOKENS_H */
