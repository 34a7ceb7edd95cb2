/*
 * attention_tile.c - the tile product of the tiled attention and the
 * packing of a head's rows (see attention_tile.h).
 *
 * Packing (from the strided (B, T, H, D) layout into contiguous per-head
 * arrays, T padded to a multiple of 64 and D to a multiple of 16 with
 * zeros) is what makes the tiles cheap: every row of q, k, v, dO is read
 * from memory once per work unit instead of once per tile. The products
 * run through one register-blocked micro-kernel (4 rows x up to 64
 * columns, in tsr_vf vectors).
 */
#include "attention_tile.h"

#include <string.h>

#include "simd.h"

/* The micro-kernel works in the target's own vector width (tsr_vf). Its
 * accumulators (4 rows x nv groups of 16 columns) and the B row must fit
 * the register file: 16 of AVX-512's 32 registers for 4 x 64; AVX2's 16
 * registers hold 4 x 16 (8 accumulators), wider ones spill. */
#if TSR_VL == 16
#define TSR_TILE_NV_MAX 4
#else
#define TSR_TILE_NV_MAX 1
#endif
#define TSR_TILE_VPER16 (16 / TSR_VL) /* vectors per 16 columns */

/* C rows [0, 4) x 16*NV columns (+)= A rows [0, 4) x k-range [k0, k1) @ B.
 * Always inlined with a constant nv so that the accumulators stay in
 * registers. */
static inline __attribute__((always_inline)) void
micro_4xn(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs, const float *b,
          int64_t ldb, int64_t k0, int64_t k1, const int nv, int zero)
{
    enum { NVEC = TSR_TILE_NV_MAX * TSR_TILE_VPER16 };
    const int nvec = nv * TSR_TILE_VPER16;
    tsr_vf acc[4][NVEC];
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < nvec; v++) {
            if (zero) {
                const tsr_vf z = {0};
                acc[r][v] = z;
            } else {
                acc[r][v] = TSR_VF_LOAD(c + r * ldc + v * TSR_VL);
            }
        }
    for (int64_t l = k0; l < k1; l++) {
        tsr_vf bv[NVEC];
        for (int v = 0; v < nvec; v++)
            bv[v] = TSR_VF_LOAD(b + l * ldb + v * TSR_VL);
        for (int r = 0; r < 4; r++) {
            float s = a[r * ars + l * acs];
            for (int v = 0; v < nvec; v++)
                acc[r][v] += s * bv[v];
        }
    }
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < nvec; v++)
            TSR_VF_STORE(c + r * ldc + v * TSR_VL, acc[r][v]);
}

void tsr_attn_tile_gemm(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs,
                        const float *b, int64_t ldb, int64_t m, int64_t n, int64_t k, int zero,
                        tsr_tile_mode mode, const int16_t *lo, const int16_t *hi)
{
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        int64_t n0 = 0, nn = n, k0 = 0, k1 = k;
        if (mode == TSR_TILE_N_BOUNDED) {
            n0 = lo[i0 / 4] / 16 * 16;
            nn = tsr_min64(n, tsr_round_up64(hi[i0 / 4], 16));
        } else if (mode == TSR_TILE_K_BOUNDED) {
            k0 = lo[i0 / 4];
            k1 = tsr_min64(k, hi[i0 / 4]);
        }
        if (nn <= n0 || k1 <= k0) {
            if (zero && mode == TSR_TILE_K_BOUNDED) /* an empty sum is still written */
                for (int r = 0; r < 4; r++)
                    memset(c + (i0 + r) * ldc, 0, (size_t)n * sizeof(float));
            continue;
        }
        float *ci = c + i0 * ldc;
        const float *ai = a + i0 * ars;
        for (int64_t j0 = n0; j0 < nn; j0 += 16 * TSR_TILE_NV_MAX) {
            switch (tsr_min64(TSR_TILE_NV_MAX, (nn - j0) / 16)) {
#if TSR_TILE_NV_MAX == 4
            case 4:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 4, zero);
                break;
            case 3:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 3, zero);
                break;
            case 2:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 2, zero);
                break;
#endif
            default:
                micro_4xn(ci + j0, ldc, ai, ars, acs, b + j0, ldb, k0, k1, 1, zero);
                break;
            }
        }
    }
}

void tsr_attn_pack_rows(float *dst, int64_t dp, const float *src, int64_t stride, int64_t n,
                        int64_t rows, int64_t d, float mul)
{
    for (int64_t i = 0; i < rows; i++) {
        float *o = dst + i * dp;
        if (i < n) {
            const float *s = src + i * stride;
#pragma omp simd
            for (int64_t j = 0; j < d; j++)
                o[j] = s[j] * mul;
            for (int64_t j = d; j < dp; j++)
                o[j] = 0.0f;
        } else {
            memset(o, 0, (size_t)dp * sizeof(float));
        }
    }
}

/* The transpose is written in 64-column blocks, each a contiguous dp x 64
 * matrix: with the plain dp x T layout every row of a tile's B operand is
 * T floats from the last, a multiple of 4 KiB, so the 64 rows a tile
 * product reads (and the 64 a strip of the packing writes) all fall in
 * the same few L1 sets. Done in 16-row strips. */
void tsr_attn_pack_cols(float *dst, const float *src, int64_t stride, int64_t n, int64_t cols,
                        int64_t d, int64_t dp)
{
    for (int64_t b0 = 0; b0 < cols; b0 += TSR_ATTN_BLK) {
        float *blk = dst + b0 * dp;
        for (int64_t j = d; j < dp; j++)
            memset(blk + j * TSR_ATTN_BLK, 0, TSR_ATTN_BLK * sizeof(float));
        for (int64_t i0 = b0; i0 < b0 + TSR_ATTN_BLK; i0 += 16) {
            for (int64_t j = 0; j < d; j++) {
                float *o = blk + j * TSR_ATTN_BLK + (i0 - b0);
                for (int64_t i = 0; i < 16; i++)
                    o[i] = i0 + i < n ? src[(i0 + i) * stride + j] : 0.0f;
            }
        }
    }
}
