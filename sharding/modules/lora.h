/*
 * lora.h - low-rank adapters (Hu et al. 2021, LoRA) on the parallel
 * linears of attention and the MLP: y = x W^T + scale * drop(x) A^T B^T,
 * scale = alpha / rank, W frozen, A (rank, in) and B (out, rank) trained.
 *
 * Tensor parallelism follows the base linear, so the adapter adds no
 * collective to a column-parallel linear's forward and one of B*T x rank
 * floats to the others:
 *   column-parallel base (qkv, fc1: W split by output rows): A whole on
 *     every rank, B split by rows as W is. Forward: x A^T on every rank
 *     (the whole sequence, as the base sees it), times this rank's rows
 *     of B. Backward: the partial d(x A^T) of this rank's output rows is
 *     summed over tp (the rank columns only) for A's gradient; its product
 *     with A joins the base's partial input gradient before that is
 *     summed.
 *   row-parallel base (proj, fc2: W split by input columns): A split by
 *     columns as W is, B whole. Forward: the partial x A^T is summed over
 *     tp, times B on tp rank 0 only, into the partial output the base
 *     reduces (so it is added once). Backward: every rank has the whole
 *     output gradient, so B's gradient is the same on each, and this
 *     rank's columns of A and of the input gradient need nothing else.
 * A starts as normal(0, 1/sqrt(3 in)) (the variance of the kaiming-uniform
 * PEFT uses), B as zeros, so the adapted model starts as the base. Dropout
 * (--lora-dropout) acts on the adapter's input only, keyed by ("lora",
 * layer, linear) and the global element, so every layout draws the same
 * mask; backward draws it again instead of keeping it.
 */
#ifndef TSR_SHARDING_MODULES_LORA_H
#define TSR_SHARDING_MODULES_LORA_H

#include "tessera/modules.h"

/* Which linear of a layer, for dropout keys (the TSR_LORA_* bit's index). */
typedef enum tsr_lora_linear {
    TSR_LORA_LINEAR_QKV = 0,
    TSR_LORA_LINEAR_PROJ,
    TSR_LORA_LINEAR_FC1,
    TSR_LORA_LINEAR_FC2
} tsr_lora_linear;

/* One adapted linear of a module: its slots and shape. */
typedef struct tsr_lora_site {
    const tsr_lora_config *cfg;
    tsr_lora_linear linear;
    int a, b;             /* parameter slots */
    int xa, x_drop, d_xa; /* buffer slots: (tokens, rank) saved, (tokens, in) and
                           * (tokens, rank) scratch */
    int64_t in, out;      /* this rank's input columns and output rows */
} tsr_lora_site;

/* Whether cfg adapts `linear`. */
bool tsr_lora_enabled(const tsr_lora_config *cfg, tsr_lora_linear linear);

/* Declares the two parameter slots of the adapter of the weight in slot
 * `base` ("<prefix>.lora_A.weight", "<prefix>.lora_B.weight"; disabled
 * when the linear is not adapted): base global shape (rows, cols), B split
 * as `rows_split` (ROWS, GATE_UP) for a column-parallel base, A by columns
 * for a row-parallel one. */
void tsr_lora_declare_params(tsr_module_decl *decl, const tsr_lora_config *cfg,
                             tsr_lora_linear linear, const char *prefix, int base, int64_t rows,
                             int64_t cols, tsr_param_split rows_split);
/* Declares its three buffer slots; in_local: this rank's input columns. */
void tsr_lora_declare_buffers(tsr_module_decl *decl, const tsr_lora_config *cfg,
                              tsr_lora_linear linear, int64_t in_local);

/* The adapter's term of the base output. column-parallel: out (tokens,
 * out) is this rank's output; row-parallel: the partial output before the
 * tp sum. No-op when the site is not adapted. */
tsr_status tsr_lora_forward(const tsr_module_run *run, const tsr_lora_site *site, const float *x,
                            float *out);
/* Gradients of A and B (+=) and the adapter's part of the input gradient
 * (+= into dx: the base's partial sum for a column-parallel linear, this
 * rank's input columns for a row-parallel one). dy: the gradient of the
 * output the forward added to. */
tsr_status tsr_lora_backward(const tsr_module_run *run, const tsr_lora_site *site, const float *x,
                             const float *dy, float *dx);

#endif /* TSR_SHARDING_MODULES_LORA_H */
