/*
 * optimizer_case.h - the small model the optimizer's piece tests share
 * (test_optimizer_pieces.c on the CPU, test_optimizer_cuda.c on the GPU):
 * four tensors of 1000 trainable floats, one of them another replica's to
 * write (not counted in the norm) and one frozen; four weight-decay spans
 * that cut the tensors elsewhere; two owned ranges of a distributed
 * optimizer whose moments are packed from 0.
 */
#ifndef TSR_TEST_OPTIMIZER_CASE_H
#define TSR_TEST_OPTIMIZER_CASE_H

#include "train/optimizer.h"

#define OC_PARAMS 1000

typedef struct optimizer_case {
    tsr_tensor_desc tensors[4];
    tsr_param_span spans[4];
    tsr_shard_range ranges[2];
    tsr_model model;       /* params, grads: the caller's */
    tsr_param_shard sharded; /* the two ranges, moments packed */
    tsr_param_shard owned;   /* the two ranges, moments for everything */
} optimizer_case;

void oc_make(optimizer_case *c, float *params, float *grads);

#endif /* TSR_TEST_OPTIMIZER_CASE_H */
