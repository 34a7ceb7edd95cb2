/*
 * kernels.h - the CPU kernels a transformer layer is built from (fp32; the
 * linear products also in bf16 under --bf16).
 *
 * Conventions (every kernel):
 * - forward and backward sit next to each other and take their arguments
 *   in the same order; the shape comment above each pair is the contract.
 * - Backward ACCUMULATES (+=) into every gradient output, including the
 *   input gradient; zeroing is the trainer's job, once per step. Any
 *   gradient output may be NULL when the caller does not need it.
 * - Row counts and sizes are int64_t and index arithmetic is done in
 *   int64_t/size_t: B*T*V passes 2^31 for real vocabularies.
 * - Kernels never allocate on the heap and never communicate. A kernel
 *   that needs scratch space takes it as an argument, with a companion
 *   *_scratch_floats() telling how much.
 * - Kernels use the threads the rank owns (OpenMP; BLAS threads for
 *   sgemm) and give bitwise identical results run to run for a fixed
 *   thread count.
 * - Weight layout is PyTorch's/Megatron's: a linear weight is
 *   (out_features, in_features), row-major.
 */
#ifndef TESSERA_KERNELS_H
#define TESSERA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear --------------------------------------------------------------
 * inp (N, IC), weight (OC, IC), bias (OC) or NULL, out (N, OC)
 * out = inp @ weight^T + bias                  (forward overwrites out)
 * dinp += dout @ weight; dweight += dout^T @ inp; dbias += colsum(dout) */
void tsr_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int64_t n, int64_t in_features, int64_t out_features);
void tsr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int64_t n, int64_t in_features,
                         int64_t out_features);
/* out += inp @ weight^T (a second product into the same output: LoRA) */
void tsr_linear_forward_add(float *out, const float *inp, const float *weight, int64_t n,
                            int64_t in_features, int64_t out_features);

/* ---- bf16 (--bf16) --------------------------------------------------------
 * bf16 is the upper half of an fp32. fp32 -> bf16 rounds to nearest, ties
 * to even, keeps NaN a (quiet) NaN and flushes denormals to a signed zero:
 * the bits of AVX512-BF16's conversion, used when the CPU has it
 * (tsr_bf16_has_vector_convert), computed the same way when not. */
uint16_t tsr_bf16_of_float(float f);
float tsr_float_of_bf16(uint16_t h);
void tsr_bf16_from_floats(uint16_t *dst, const float *src, int64_t n);
void tsr_floats_from_bf16(float *dst, const uint16_t *src, int64_t n);
/* dst[i] = the fp32 of src[i]'s bf16 rounding (dst may be src) */
void tsr_bf16_round_floats(float *dst, const float *src, int64_t n);
bool tsr_bf16_has_vector_convert(void);

/* ---- fp16 (--fp16) --------------------------------------------------------
 * IEEE binary16, rounded to nearest, ties to even; 65520 and above become
 * inf (an fp16 overflow); subnormals kept; NaN quiet. round_floats leaves
 * each value as the fp32 of its fp16 rounding (what --fp16's sgemm reads). */
uint16_t tsr_fp16_of_float(float f);
float tsr_float_of_fp16(uint16_t h);
void tsr_fp16_round_floats(float *dst, const float *src, int64_t n);
void tsr_fp16_from_floats(uint16_t *dst, const float *src, int64_t n);
void tsr_floats_from_fp16(float *dst, const uint16_t *src, int64_t n);

/* Under --bf16 / --fp16 the trainer turns the products of tsr_linear_*
 * into 16-bit products with fp32 accumulation (runtime/kernels/matmul16.h):
 * the operands are rounded, the sums and the outputs stay fp32. "fp32",
 * "bf16" or "fp16": what they are now. A module never needs to ask; it is
 * said for tests and logs. */
const char *tsr_linear_precision(void);

/* ---- LayerNorm -------------------------------------------------------------
 * inp (N, C), weight (C), bias (C), out (N, C), mean (N), rstd (N) saved */
void tsr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int64_t n, int64_t c,
                           float eps);
void tsr_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int64_t n, int64_t c);

/* ---- RMSNorm ---------------------------------------------------------------
 * inp (N, C), weight (C), out (N, C), rstd (N) saved; out = inp*rstd*weight */
void tsr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                         int64_t n, int64_t c, float eps);
void tsr_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int64_t n, int64_t c);

/* ---- GELU (tanh approximation) ----------------------------------------------
 * inp (N), out (N) */
void tsr_gelu_forward(float *out, const float *inp, int64_t n);
void tsr_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n);

/* ---- SwiGLU ------------------------------------------------------------------
 * inp (N, 2F) holding [gate (F) | up (F)] per row, out (N, F)
 * out = silu(gate) * up */
void tsr_swiglu_forward(float *out, const float *inp, int64_t n, int64_t f);
void tsr_swiglu_backward(float *dinp, const float *dout, const float *inp, int64_t n, int64_t f);

/* ---- token embedding (vocabulary-sliced) -----------------------------------------
 * tokens (N), table (V_local, C) holding global ids [vocab_start, vocab_start+V_local),
 * out (N, C). A token outside the slice gets a zero row (the tensor-parallel
 * all-reduce then sums the one owner's row). */
void tsr_embedding_forward(float *out, const int32_t *tokens, const float *table, int64_t n,
                           int64_t c, int64_t vocab_start, int64_t vocab_local);
void tsr_embedding_backward(float *dtable, const float *dout, const int32_t *tokens, int64_t n,
                            int64_t c, int64_t vocab_start, int64_t vocab_local);

/* ---- learned absolute positions -------------------------------------------------
 * out (B, T, C) += wpe[t_offset + t] for each (b, t); wpe (max_positions, C).
 * t_offset is the global position of local row t = 0 (sequence/context
 * parallelism hold a slice of the sequence). */
void tsr_position_add_forward(float *out, const float *wpe, int64_t b, int64_t t, int64_t c,
                              int64_t t_offset);
void tsr_position_add_backward(float *dwpe, const float *dout, int64_t b, int64_t t, int64_t c,
                               int64_t t_offset);
/* The same with positions restarting at each document (--reset-position-ids):
 * row (b, t) gets wpe[t_offset + t - doc_start[b * seq + t_offset + t]], where
 * doc_start (B, seq) holds for each position of the whole sequence the first
 * position of its document (tsr_attn_mask's); doc_start NULL: as above. */
void tsr_position_add_forward_docs(float *out, const float *wpe, const int32_t *doc_start,
                                   int64_t b, int64_t t, int64_t c, int64_t t_offset,
                                   int64_t seq);
void tsr_position_add_backward_docs(float *dwpe, const float *dout, const int32_t *doc_start,
                                    int64_t b, int64_t t, int64_t c, int64_t t_offset,
                                    int64_t seq);

/* ---- rotary position embedding (rotate-half convention, as LLaMA/Megatron) -----
 * x (B, T, H, D), D even; pairs (i, i + D/2) rotated by angle
 * (t_offset + t) * base^(-2i/D). Forward writes out (may alias x);
 * backward accumulates the inverse rotation of dout into dx. */
void tsr_rope_forward(float *out, const float *x, int64_t b, int64_t t, int64_t h, int64_t d,
                      int64_t t_offset, float base);
void tsr_rope_backward(float *dx, const float *dout, int64_t b, int64_t t, int64_t h, int64_t d,
                       int64_t t_offset, float base);
/* The same with positions restarting at each document: row (b, t) is at
 * t_offset + t - doc_start[b * t + t], doc_start (B, T) as for
 * tsr_position_add_forward_docs (NULL: no restart). */
void tsr_rope_forward_docs(float *out, const float *x, const int32_t *doc_start, int64_t b,
                           int64_t t, int64_t h, int64_t d, int64_t t_offset, float base);
void tsr_rope_backward_docs(float *dx, const float *dout, const int32_t *doc_start, int64_t b,
                            int64_t t, int64_t h, int64_t d, int64_t t_offset, float base);

/* ---- fused QKV projection output -> separate q, k, v ------------------------------
 * qkv (N, G * (R + 2) * D): per token, for each query group g, R query heads
 * then one key head then one value head (Megatron's layout, so that a
 * column-parallel split over groups is contiguous). R = heads per group.
 * q (N, G*R, D), k (N, G, D), v (N, G, D). */
void tsr_qkv_split_forward(float *q, float *k, float *v, const float *qkv, int64_t n,
                           int64_t groups, int64_t heads_per_group, int64_t d);
void tsr_qkv_split_backward(float *dqkv, const float *dq, const float *dk, const float *dv,
                            int64_t n, int64_t groups, int64_t heads_per_group, int64_t d);

/* ---- dropout keyed by global position ----------------------------------------------
 * The mask of element (sample, position, channel) is a pure function of
 * (key, global index), so it is the same in every parallel layout and is
 * recomputed in backward instead of stored. */
typedef struct tsr_dropout {
    float p;                 /* drop probability; 0 disables */
    uint64_t key;            /* from tsr_rng_key(seed, purpose) mixed with step/microbatch */
    int64_t sample_offset;   /* global index of local sample 0 */
    int64_t t_offset;        /* global position of local row t = 0 */
    int64_t t_global;        /* sequence length of the whole sample */
    int64_t head_offset;     /* attention: global index of local head 0 */
    int64_t heads_global;    /* attention: heads of the whole model */
    int64_t c_offset;        /* global column of local column 0 (an input split by columns) */
    int64_t c_global;        /* columns of the whole activation; 0: C, not split */
} tsr_dropout;

/* x (B, T, C): out = x * mask / (1 - p); C is this rank's columns c_offset.. of
 * c_global (0: all of them) */
void tsr_dropout_forward(float *out, const float *x, int64_t b, int64_t t, int64_t c,
                         const tsr_dropout *dropout);
void tsr_dropout_backward(float *dx, const float *dout, int64_t b, int64_t t, int64_t c,
                          const tsr_dropout *dropout);

/* ---- which keys a query sees ------------------------------------------------------
 * Query i of a sample sees key j when j is in its causal part or in its
 * bidirectional part:
 *   causal part   ds(i) <= j <= i, and by pattern
 *     TSR_ATTN_CAUSAL   every such j
 *     TSR_ATTN_WINDOW   i - window < j (window keys, the query's own included)
 *     TSR_ATTN_FIXED    with I = i / block, J = j / block, L = stride / block
 *                       (Child et al. 2019, "fixed", at block granularity):
 *                       I / L == J / L (the same stride window) or
 *                       J % L == L - 1 (the last block of a window: its summary)
 *     TSR_ATTN_STRIDED  I - J < L (the L most recent blocks) or
 *                       (I - J) % L == 0 (every L-th block before: "strided")
 *   bidirectional part   prefix_lo(i) <= j < prefix_hi(i), whatever the pattern
 *                        (a prefix LM: the query's prompt, in both directions)
 * ds(i) = doc_start[i] (0 when NULL): the first position of the query's
 * document (--reset-attention-mask); ds(i) > i leaves the causal part
 * empty. The per-query arrays are (B, T), positions within the sample.
 * A query that sees no key at all (padding) gets out = 0 and lse = -inf,
 * and no gradient flows through it; nothing is ever NaN.
 * Computation is in 64x64 tiles: a tile no query of which sees any of its
 * keys is skipped in forward and backward; the others are computed whole
 * and masked. block must divide T and stride must be a multiple of block;
 * tsr_attention_mask_check() says so. */
typedef enum tsr_attn_pattern {
    TSR_ATTN_CAUSAL = 0,
    TSR_ATTN_WINDOW,
    TSR_ATTN_FIXED,
    TSR_ATTN_STRIDED
} tsr_attn_pattern;

typedef struct tsr_attn_mask {
    tsr_attn_pattern pattern;
    int64_t window;               /* TSR_ATTN_WINDOW */
    int64_t block, stride;        /* TSR_ATTN_FIXED, TSR_ATTN_STRIDED */
    const int32_t *doc_start;     /* (B, T) or NULL */
    const int32_t *prefix_lo;     /* (B, T) or NULL (with prefix_hi) */
    const int32_t *prefix_hi;
} tsr_attn_mask;

/* The pattern's sizes against a sequence of t tokens: TSR_ERR_INVALID_ARG
 * with a message naming what is wrong. */
tsr_status tsr_attention_mask_check(const tsr_attn_mask *mask, int64_t t);
/* Score elements of the 64x64 tiles the kernels compute for one (sample,
 * head) under the mask's pattern (its per-query arrays taken as absent):
 * the attention cost, T*T for none skipped. mask NULL: causal. */
double tsr_attention_computed_elements(const tsr_attn_mask *mask, int64_t t);

/* Whether query i sees key j under the mask's pattern alone (causal part;
 * its per-query arrays are not read). mask NULL: causal. */
int tsr_attn_pattern_sees(const tsr_attn_mask *mask, int64_t i, int64_t j);

/* ---- attention of one new token per sample over a key/value cache (generation) ----
 * q (B, Hq, D): the queries at position pos; k_cache, v_cache (B, T, Hkv, D)
 * hold keys and values of positions 0..pos (rows past pos are not read);
 * out (B, Hq, D). Query head h reads key/value head h / (Hq/Hkv); scale
 * 1/sqrt(D); keys by the mask's pattern (tsr_attn_pattern_sees; its
 * per-query arrays are not read). The cost is O(pos) per head: nothing
 * before pos is computed again. scratch: B * Hq * T floats (the scores). */
void tsr_attention_decode(float *out, const float *q, const float *k_cache, const float *v_cache,
                          int64_t b, int64_t t, int64_t pos, int64_t hq, int64_t hkv, int64_t d,
                          const tsr_attn_mask *mask, float *scratch);

/* ---- self-attention, flash-style -----------------------------------------------------
 * q (B, T, Hq, D), k and v (B, T, Hkv, D) with Hq a multiple of Hkv (grouped
 * query attention: query head h reads key/value head h / (Hq/Hkv)),
 * out (B, T, Hq, D), lse (B, Hq, T) saved: log-sum-exp of each query's
 * scaled scores. Scale 1/sqrt(D). mask NULL: causal. Scores are computed
 * in tiles with an online softmax: no (T, T) matrix per head is ever held
 * for all heads. dropout may be NULL; its mask is keyed by (sample,
 * global head, i, j).
 * scratch: tsr_attention_scratch_floats(...) floats, for the tiles of
 * every thread: O(T * D) per thread (one head's packed q, k, v and
 * gradients), never O(T^2). The size counts omp_get_max_threads() at the
 * time it is asked, so ask under the thread settings the kernels run with. */
size_t tsr_attention_scratch_floats(int64_t t, int64_t d);
void tsr_attention_forward(float *out, float *lse, const float *q, const float *k,
                           const float *v, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                           int64_t d, const tsr_attn_mask *mask, const tsr_dropout *dropout,
                           float *scratch);
void tsr_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, const float *out,
                            const float *lse, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                            int64_t d, const tsr_attn_mask *mask, const tsr_dropout *dropout,
                            float *scratch);

/* ---- cross-entropy over a (possibly vocabulary-sliced) logits buffer ----------------
 * logits (N, V_local) for global ids [vocab_start, vocab_start + V_local).
 * Steps, so that a tensor-parallel caller can reduce across slices between
 * them (max after step 1, sumexp and target logit after step 2):
 *  1. row_max[n] = max_j logits[n, j]
 *  2. sumexp[n] = sum_j exp(logits[n, j] - row_max[n]);
 *     target_logit[n] = logits[n, targets[n] - vocab_start] if in the slice, else 0
 *  3. loss[n] = log(sumexp[n]) + row_max[n] - target_logit[n]
 *  4. logits are overwritten IN PLACE with d loss_weighted / d logits:
 *     (softmax - onehot(target)) * dloss[n], so the probabilities are never
 *     stored beside the logits.
 * Rows with dloss[n] == 0 (masked tokens) get zero gradient. */
void tsr_ce_row_max(float *row_max, const float *logits, int64_t n, int64_t v_local);
void tsr_ce_sumexp_target(float *sumexp, float *target_logit, const float *logits,
                          const float *row_max, const int32_t *targets, int64_t n,
                          int64_t v_local, int64_t vocab_start);
void tsr_ce_loss(float *loss, const float *sumexp, const float *row_max,
                 const float *target_logit, int64_t n);
void tsr_ce_logits_to_grad(float *logits, const float *row_max, const float *sumexp,
                           const int32_t *targets, const float *dloss, int64_t n,
                           int64_t v_local, int64_t vocab_start);

/* ---- elementwise and reductions ---------------------------------------------------- */
/* out = a + b (n); out may alias a or b */
void tsr_add_forward(float *out, const float *a, const float *b, int64_t n);
/* y += x (n) */
void tsr_accumulate(float *y, const float *x, int64_t n);
/* sum of squares in double, for the gradient norm */
double tsr_sum_squares(const float *x, int64_t n);
/* x *= s */
void tsr_scale(float *x, float s, int64_t n);

/* ---- AdamW (decoupled weight decay, bias correction) -------------------------------
 * step counts from 1. grad is multiplied by grad_scale first (clipping).
 * m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2
 * param -= lr * (m/(1-b1^step) / (sqrt(v/(1-b2^step)) + eps) + weight_decay*param) */
void tsr_adamw_update(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int64_t step,
                      float grad_scale);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_KERNELS_H */
