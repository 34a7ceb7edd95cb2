/*
 * attention_tile.h - the pieces the tiled attention passes share (internal
 * to runtime/kernels/cpu): the 64x64 tile product and the packing of one
 * head's rows into contiguous, zero-padded arrays.
 */
#ifndef TSR_KERNELS_CPU_ATTENTION_TILE_H
#define TSR_KERNELS_CPU_ATTENTION_TILE_H

#include <stdint.h>

#define TSR_ATTN_BLK 64

/* Which part of a tile product a row group of 4 needs: the bounds come
 * from the mask (attention_mask.h), one [lo, hi) per group. */
typedef enum tsr_tile_mode {
    TSR_TILE_FULL,      /* every row uses all columns and the whole k range */
    TSR_TILE_N_BOUNDED, /* group g needs only output columns [lo[g], hi[g]) (rounded
                         * out to 16): the other columns are left unwritten */
    TSR_TILE_K_BOUNDED  /* group g needs only the k range [lo[g], hi[g]) */
} tsr_tile_mode;

static inline int64_t tsr_round_up64(int64_t x, int64_t m)
{
    return (x + m - 1) / m * m;
}

static inline int64_t tsr_min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* C (m x n) (+)= A (m x k) @ B (k x n), m a multiple of 4, n of 16;
 * A(i, l) = a[i * ars + l * acs], B row-major with ldb, C row-major ldc.
 * lo and hi (per group of 4 rows, m / 4 entries) bound the columns or the
 * k range by mode; NULL with TSR_TILE_FULL. */
void tsr_attn_tile_gemm(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs,
                        const float *b, int64_t ldb, int64_t m, int64_t n, int64_t k, int zero,
                        tsr_tile_mode mode, const int16_t *lo, const int16_t *hi);

/* Rows [0, n) of a (.., H, D)-strided tensor into dst (rows x dp, row
 * major), times `mul`; rows [n, rows) and columns [d, dp) are zero. */
void tsr_attn_pack_rows(float *dst, int64_t dp, const float *src, int64_t stride, int64_t n,
                        int64_t rows, int64_t d, float mul);

/* The transpose in blocks of 64 columns (cols a multiple of 64): block b
 * is the dp x 64 matrix at dst + b * 64 * dp (leading dimension 64), its
 * column c source row 64 b + c; zero beyond n and d. */
void tsr_attn_pack_cols(float *dst, const float *src, int64_t stride, int64_t n, int64_t cols,
                        int64_t d, int64_t dp);

#endif /* TSR_KERNELS_CPU_ATTENTION_TILE_H */
