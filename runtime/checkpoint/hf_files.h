/*
 * hf_files.h - the safetensors files of a Hugging Face model directory:
 * model.safetensors, or the shards model.safetensors.index.json names
 * (its "weight_map": tensor name -> shard file in the same directory).
 */
#ifndef TSR_RUNTIME_HF_FILES_H
#define TSR_RUNTIME_HF_FILES_H

#include <stddef.h>

#include "checkpoint/safetensors.h"
#include "tessera/status.h"

typedef struct tsr_hf_files {
    tsr_st_file *files;
    size_t count;
} tsr_hf_files;

/* Opens and checks every weights file of dir (their headers; tensors are
 * read later). With an index, every tensor it maps must be in the shard it
 * names. TSR_ERR_INVALID_ARG / TSR_ERR_FORMAT saying what is missing or
 * wrong (a directory with only pytorch_model.bin, say). */
tsr_status tsr_hf_files_open(const char *dir, tsr_hf_files *out);
void tsr_hf_files_close(tsr_hf_files *f);

#endif /* TSR_RUNTIME_HF_FILES_H */
