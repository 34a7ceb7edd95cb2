/*
 * matmul16_onednn.h - the bf16 product engine of matmul16.c: oneDNN's
 * matmul, C (m, n) [+]= A (m, k) B (k, n) from bf16 operands into fp32.
 * Internal to runtime/kernels; matmul16_onednn_absent.c stands in where
 * CMake found no oneDNN.
 */
#ifndef TSR_KERNELS_MATMUL16_ONEDNN_H
#define TSR_KERNELS_MATMUL16_ONEDNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

/* how a product reads its stored operands */
typedef enum tsr_operand_layout {
    TSR_LAYOUT_A_B_TRANSPOSED = 0, /* forward: inp @ weight^T */
    TSR_LAYOUT_A_B,                /* input gradient: dout @ weight */
    TSR_LAYOUT_A_TRANSPOSED_B,     /* weight gradient: dout^T @ inp */
    TSR_LAYOUT_COUNT
} tsr_operand_layout;

typedef struct tsr_onednn tsr_onednn;

bool tsr_onednn_bf16_supported(char *why, size_t why_size);
/* impl gets the implementation oneDNN chose */
tsr_status tsr_onednn_create(tsr_onednn **out, char *impl, size_t impl_size);
void tsr_onednn_destroy(tsr_onednn *e);
/* lda, ldb: leading dimensions of A and B as stored (transposed ones
 * stored as (k, m) and (n, k)) */
tsr_status tsr_onednn_product(tsr_onednn *e, tsr_operand_layout layout, bool accumulate,
                              int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float *c, int64_t ldc);

#endif /* TSR_KERNELS_MATMUL16_ONEDNN_H */
