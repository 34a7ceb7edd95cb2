/*
 * blend.h - file datasets: one or more token files behind --data-path,
 * weighted and split, served through the tsr_dataset interface.
 *
 * --data-path is one argument: either a single PREFIX (of PREFIX.bin and
 * PREFIX.idx) or FILE.h5, or the weighted form "W1 PATH1 W2 PATH2 ..."
 * (whitespace-separated, as Megatron's list; quote it on the command line;
 * paths cannot contain spaces). Weights are positive and normalised.
 *
 * Each path is split into train/valid/test document ranges by --split and
 * packed into samples (gpt_samples.h); for several paths, global sample i
 * of a split comes from the path and per-path index that Megatron's
 * blending assigns (the greedy rule of its build_blending_indices: sample
 * i goes to the path whose share is furthest behind weight x max(i, 1),
 * ties to the first). So the blend is a pure function of i, like the
 * samples themselves. The loss mask of file datasets is 1 everywhere.
 *
 * Called by dataset.c; the blend sequence is exposed for tests.
 */
#ifndef TSR_RUNTIME_BLEND_H
#define TSR_RUNTIME_BLEND_H

#include <stdint.h>

#include "dataset.h"
#include "tessera/config.h"
#include "tessera/status.h"

enum { TSR_BLEND_MAX_PATHS = 1024 };

/* Parsed --data-path: `count` paths and normalised weights, pointing into
 * `storage` (owned). */
typedef struct tsr_data_path {
    int count;
    double weights[TSR_BLEND_MAX_PATHS];
    const char *paths[TSR_BLEND_MAX_PATHS];
    char *storage;
} tsr_data_path;

tsr_status tsr_data_path_parse(const char *text, tsr_data_path *out);
void tsr_data_path_free(tsr_data_path *dp);

/* The blending sequence over `count` normalised weights. */
typedef struct tsr_blend tsr_blend;

tsr_status tsr_blend_create(const double *weights, int count, tsr_blend **out);
void tsr_blend_destroy(tsr_blend *b);
/* Path and per-path sample index of global sample i (>= 0). Extends its
 * tables on demand: the first call for a large i costs O(i x count). */
tsr_status tsr_blend_lookup(tsr_blend *b, int64_t i, int *path, int64_t *index);

/* Opens the file dataset named by cfg->data_path; cfg->vocab_size must be
 * set. Train and (when --eval-interval is set) valid splits must hold at
 * least one sample; the test split is checked when first read. */
tsr_status tsr_file_dataset_open(const tsr_config *cfg, tsr_dataset **out);

#endif /* TSR_RUNTIME_BLEND_H */
