/*
 * attention_mask.h - the attention mask resolved tile by tile (internal to
 * runtime/kernels/cpu; the rules are those of tsr_attn_mask in kernels.h).
 *
 * A query's visible keys are its causal part [c0, i] (thinned by a sparse
 * pattern) and its bidirectional part [p0, p1). Per 64-query block the
 * hull of every row's keys is kept, so that a tile outside it is known to
 * be empty without looking at its rows. A tile that is not empty is
 * described either by one column range per row (every contiguous mask, and
 * sparse blocks that are multiples of 64, for which the pattern is the same
 * over the whole tile) or by one flag per element (sparse blocks smaller
 * than a tile, or a prefix that does not touch the causal part), and by
 * the hulls of its counted scores per group of 4 rows and of 4 columns, so
 * that the tile products skip what the mask zeroes (the upper triangle of
 * a diagonal tile, the lower one of a window's oldest tile).
 */
#ifndef TSR_KERNELS_CPU_ATTENTION_MASK_H
#define TSR_KERNELS_CPU_ATTENTION_MASK_H

#include <stdint.h>

#include "attention_tile.h"
#include "tessera/kernels.h"

/* The mask of one sample. */
typedef struct tsr_attn_sample {
    const tsr_attn_mask *mask; /* never NULL */
    const int32_t *doc_start, *prefix_lo, *prefix_hi; /* this sample's rows, or NULL */
    int64_t t;
} tsr_attn_sample;

/* What the rows of one 64-query block see, summarised. */
typedef struct tsr_attn_qblock {
    int64_t lo, hi; /* hull of the visible keys of every row (lo >= hi: none) */
    int bidir;      /* some row has a bidirectional part */
    int gap;        /* some row's two parts neither overlap nor touch */
} tsr_attn_qblock;

/* One tile (query block x key block): which scores count. */
typedef struct tsr_attn_tile {
    int32_t el[TSR_ATTN_BLK * TSR_ATTN_BLK];   /* row-major, -1 counts, 0 not */
    float lo[TSR_ATTN_BLK], hi[TSR_ATTN_BLK]; /* row r counts columns [lo, hi) */
    /* hulls of the counted scores, for the tile products: per group of 4
     * query rows its columns [row_lo, row_hi), per group of 4 key columns
     * its rows [col_lo, col_hi) (empty groups: 0, 0) */
    int16_t row_lo[TSR_ATTN_BLK / 4], row_hi[TSR_ATTN_BLK / 4];
    int16_t col_lo[TSR_ATTN_BLK / 4], col_hi[TSR_ATTN_BLK / 4];
    int empty;    /* no score counts: skip the tile */
    int elements; /* el holds the flags, else lo/hi the ranges */
} tsr_attn_tile;

/* Floats of scratch a tsr_attn_tile takes (a multiple of 16). */
#define TSR_ATTN_TILE_FLOATS \
    ((int64_t)((sizeof(tsr_attn_tile) + 63) / 64 * 16))

void tsr_attn_sample_init(tsr_attn_sample *s, const tsr_attn_mask *mask, int64_t sample,
                          int64_t t);
void tsr_attn_qblock_summarise(tsr_attn_qblock *qb, const tsr_attn_sample *s, int64_t block);
void tsr_attn_tile_resolve(tsr_attn_tile *tile, const tsr_attn_sample *s,
                           const tsr_attn_qblock *summary, int64_t qb, int64_t kb);

#endif /* TSR_KERNELS_CPU_ATTENTION_MASK_H */
