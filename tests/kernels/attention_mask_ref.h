/*
 * attention_mask_ref.h - what the masked-attention tests share: a test case
 * (inputs, outputs, scratch and the per-query mask arrays it owns), the
 * visibility rule of tsr_attn_mask written again from its definition in
 * kernels.h (independently of runtime/kernels/cpu/attention_mask.c), and
 * the naive full-softmax attention over the visible keys, in double.
 */
#ifndef TSR_TEST_ATTENTION_MASK_REF_H
#define TSR_TEST_ATTENTION_MASK_REF_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "tessera/kernels.h"

typedef struct mask_case {
    int64_t b, t, hq, hkv, d;
    float *q, *k, *v, *out, *lse, *scratch;
    tsr_attn_mask mask;          /* pattern CAUSAL and no arrays after mc_init */
    int32_t *doc, *plo, *phi;    /* (B, T), owned; set in mask by mc_arrays */
} mask_case;

/* q, k, v normal(0, 1) from seed; scratch sized for 4 threads */
void mc_init(mask_case *c, int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
             uint64_t seed);
void mc_free(mask_case *c);
/* Allocates doc (every row 0: one document), plo = phi = 0 (no prefix) and
 * points the mask at them. */
void mc_arrays(mask_case *c);
/* Sample s: documents starting at starts[0] = 0 < starts[1] < ... */
void mc_documents(mask_case *c, int64_t s, const int *starts, int n);
/* Sample s: each document's first plen positions (within the document)
 * are a bidirectional prefix; seen by the prefix rows, and also by every
 * later row of the document when all_rows is set. */
void mc_prefix(mask_case *c, int64_t s, int plen, int all_rows);
/* Sample s: rows [from, T) are padding, doc_start[i] = i + 1, no prefix. */
void mc_padding(mask_case *c, int64_t s, int64_t from);

/* The kc_forward_fn of a case: forward into out with the case's lse. */
void mc_forward(void *c, float *out);
void mc_backward(const mask_case *c, float *dq, float *dk, float *dv, const float *dout);

/* Query i of sample s sees key j, by the definition in kernels.h. */
int ref_sees(const tsr_attn_mask *m, int64_t s, int64_t t, int64_t i, int64_t j);
/* out (B, T, Hq, D) and lse (B, Hq, T) by the definition, in double;
 * a row that sees nothing: out 0, lse -inf. */
void ref_attention(double *out, double *lse, const mask_case *c);

/* Tolerances of the forward against ref_attention, as the largest
 * |kernel - ref| / (|ref| + REF_FLOOR). Observed (Release, the shapes of
 * the tests): out below 1.4e-4, lse below 2.2e-5. The out figure is fp32
 * rounding of outputs near zero (the largest absolute error is below
 * 7e-7, for sums over up to 512 keys); a mask error moves outputs by
 * O(0.1). */
#define REF_FLOOR 1e-3
#define REF_OUT_TOL 5e-4
#define REF_LSE_TOL 1e-4

/* Runs the forward and compares with ref_attention: rows that see
 * nothing must be out == 0 and lse == -inf exactly, the others within
 * the tolerances above; nothing may be NaN. Returns 1 when all holds
 * (prints the figures otherwise, or always with KC_VERBOSE set). */
int mc_check_forward(mask_case *c, const char *what);

/* isfinite over n floats */
int all_finite(const float *x, int64_t n);

/* The cases of test_kernels_attention_mask_skip.c (suite of the same
 * binary). */
extern const tsr_test_case attention_skip_cases[];
extern const size_t attention_skip_count;

#endif /* TSR_TEST_ATTENTION_MASK_REF_H */
