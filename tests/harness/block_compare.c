/*
 * block_compare.c - block-versus-whole-tensor comparison (block_compare.h).
 */
#include "block_compare.h"

size_t tsr_test_block_compare(const tsr_tensor_desc *t, const float *values,
                              const float *reference, size_t ref_offset, int64_t ref_cols,
                              double *diff, double *norm)
{
    for (int64_t r = 0; r < t->row_count; r++)
        for (int64_t c = 0; c < t->col_count; c++) {
            double e = reference[ref_offset +
                                 (size_t)((t->row_start + r) * ref_cols + t->col_start + c)];
            double d = values[t->offset + (size_t)(r * t->col_count + c)] - e;
            *diff += d * d;
            *norm += e * e;
        }
    return (size_t)(t->row_count * t->col_count);
}
