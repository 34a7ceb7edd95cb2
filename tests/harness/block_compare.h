/*
 * block_compare.h - compares a parallel model's block of a parameter (or
 * gradient) with the same global coordinates of a 1-rank model's whole
 * tensor. The layout-equivalence tests (tests/tp, tests/pp) sum the
 * results over ranks, which equals comparing the gathered tensors.
 */
#ifndef TSR_TEST_BLOCK_COMPARE_H
#define TSR_TEST_BLOCK_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "train/model.h"

/* Adds sum (block - reference)^2 to *diff and sum reference^2 to *norm over
 * block t of `values` (laid out row_count x col_count at t->offset), against
 * `reference` holding the whole tensor (ref_cols columns) at ref_offset.
 * Returns the number of elements compared. */
size_t tsr_test_block_compare(const tsr_tensor_desc *t, const float *values,
                              const float *reference, size_t ref_offset, int64_t ref_cols,
                              double *diff, double *norm);

#endif /* TSR_TEST_BLOCK_COMPARE_H */
