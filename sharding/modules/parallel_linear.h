/*
 * parallel_linear.h - the two edges of a tensor-parallel region, as
 * Megatron's ColumnParallelLinear and RowParallelLinear place them
 * (sharding/tensor_parallel.h has the collectives underneath):
 *
 *   column-parallel input   forward: the residual stream's local rows
 *                           become the whole sequence (all-gather under SP;
 *                           without SP they already are). backward: the
 *                           partial input gradients are summed over tp
 *                           (reduce-scatter under SP, all-reduce without).
 *   row-parallel output     (input_is_parallel) forward: the partial
 *                           products are summed over tp into local rows
 *                           (reduce-scatter / all-reduce). backward: the
 *                           local output gradient becomes the whole
 *                           sequence (all-gather under SP).
 *
 * The GEMMs stay in the modules (attention.c, mlp.c), between the edges,
 * so each module reads like the one-rank layer with its communication at
 * its two ends. On one rank every edge is free: no copy, no collective.
 */
#ifndef TSR_SHARDING_MODULES_PARALLEL_LINEAR_H
#define TSR_SHARDING_MODULES_PARALLEL_LINEAR_H

#include "tessera/module.h"

/* The whole-sequence input of a column-parallel linear: `in` itself
 * without SP, else gathered into `gathered` (TOKENS x cols, kept saved). */
tsr_status tsr_column_input_forward(const tsr_module_run *run, const float *in, float *gathered,
                                    int64_t cols, const float **full);

/* Where the input gradient's partial sums go before the reduction: din
 * itself on one rank without SP (the GEMM accumulates straight into it),
 * else `partial` (TOKENS x cols), zeroed here. */
float *tsr_column_input_grad_target(const tsr_module_run *run, float *din, float *partial,
                                    int64_t cols);
/* Sums `partial` (from the target above) over tp and adds it to din
 * (local rows); `local` (LOCAL x cols) is SP scratch. No-op when the
 * target was din. */
tsr_status tsr_column_input_backward(const tsr_module_run *run, float *din, float *partial,
                                     float *local, int64_t cols);

/* Where a row-parallel GEMM writes: out itself without SP, else `full`. */
float *tsr_row_output_target(const tsr_module_run *run, float *out, float *full);
/* Sums the partial products over tp into out (local rows). */
tsr_status tsr_row_output_forward(const tsr_module_run *run, float *out, float *full,
                                  int64_t cols);
/* The whole-sequence output gradient: dout without SP, else gathered. */
tsr_status tsr_row_output_backward(const tsr_module_run *run, const float *dout, float *gathered,
                                   int64_t cols, const float **full);

/* A row-parallel bias is added by tp rank 0 only, so the sum adds it once. */
const float *tsr_row_parallel_bias(const tsr_module_run *run, const float *bias);

#endif /* TSR_SHARDING_MODULES_PARALLEL_LINEAR_H */
