/*
 * head_check.h - what the tests of the fused LM head on the GPU share
 * (test_lm_head_steps.c runs its chunk loop with the CPU kernels,
 * test_kernels_cuda_head.c the device's): the shapes, the inputs, and an
 * independent reference made of the CPU kernels over all rows at once.
 */
#ifndef TSR_TEST_HEAD_CHECK_H
#define TSR_TEST_HEAD_CHECK_H

#include <stdint.h>

/* One head: rows, width, this shard's vocabulary rows and where they
 * start, the real vocabulary, and how many rows of logits the budget
 * holds. */
typedef struct hc_case {
    int64_t n, hidden, v_local, vocab_start, vocab, budget_rows;
} hc_case;

/* 1 row (one chunk); 300 rows in chunks of 64 (the last 44) over a shard
 * whose last 10 columns are padding; 77 rows of width 768 in chunks of 16
 * (the last 13) over the shard [500, 1013) of a 1000-word vocabulary */
#define HC_CASES 3
extern const hc_case hc_cases[HC_CASES];

typedef struct hc_ref {
    float *loss, *correct, *dx, *dweight;
} hc_ref;

/* Targets across the whole vocabulary (most outside a shard), but every
 * third row's is its argmax in this shard, so that row_correct is 1
 * there; every fifth row has weight 0 (a masked row), the others 1 / n. */
void hc_set_targets(const hc_case *c, const float *x, const float *w, int32_t *targets,
                    float *row_weight);

/* The head over all n rows with the CPU kernels: loss and correct
 * written, dx and dweight added to. */
void hc_reference(const hc_case *c, const float *x, const float *w, const int32_t *targets,
                  const float *row_weight, hc_ref *ref);

/* root mean square of x (n) */
float hc_rms(const float *x, int64_t n);

#endif /* TSR_TEST_HEAD_CHECK_H */
