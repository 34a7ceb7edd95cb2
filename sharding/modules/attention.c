/*
 * attention.c - self-attention over this rank's heads and query groups:
 * column-parallel linear_qkv (its input gathered under SP), rotary
 * embedding, flash-style attention with grouped query heads under the
 * layer's mask (causal, window, block-sparse; the micro batch's documents
 * and prefixes), row-parallel linear_proj (input_is_parallel; output summed over tp into
 * the local rows). Local rows (C) -> local rows (C).
 *
 * Shapes: B micro batch, T sequence, D head dim; this rank's Hq heads and
 * G groups (heads / tp, groups / tp), nt = B*T rows. Megatron-Core names:
 * linear_qkv.{weight,bias} (qkv rows grouped per query group, so the
 * column split is contiguous), linear_proj.{weight,bias}.
 */
#include <string.h>

#include "lora.h"
#include "parallel_linear.h"
#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { QKV_W, QKV_B, PROJ_W, PROJ_B, QKV_LORA_A, QKV_LORA_B, PROJ_LORA_A, PROJ_LORA_B };
enum {
    IN_FULL, Q, K, V, ATT, LSE,                        /* saved */
    QKV, OUT_FULL, D_ATT, D_Q, D_K, D_V, D_Q_PRE, D_K_PRE, D_QKV, D_IN_FULL, D_IN_LOCAL,
    ATTN_SCRATCH,                                      /* scratch */
    QKV_XA, QKV_XD, QKV_DXA, PROJ_XA, PROJ_XD, PROJ_DXA /* adapters (lora.h) */
};

enum { SITE_PROBS = 3 };

static tsr_status attention_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_attention_config *cfg = info->config;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_attention_config");
    if (info->in_rows != TSR_ROWS_LOCAL || info->in_cols != info->hidden)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "reads the residual stream (local rows x %lld "
                                                  "columns) but is given %lld columns",
                             (long long)info->hidden, (long long)info->in_cols);
    int tp = info->tp_size;
    if (cfg->heads <= 0 || cfg->query_groups <= 0 || cfg->head_dim <= 0 ||
        cfg->heads % cfg->query_groups != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%lld heads in %lld query groups of dimension "
                                                  "%lld: heads must be a positive multiple of "
                                                  "the groups",
                             (long long)cfg->heads, (long long)cfg->query_groups,
                             (long long)cfg->head_dim);
    if (cfg->heads % tp != 0 || cfg->query_groups % tp != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%lld heads and %lld query groups must both "
                                                  "be divisible by --tensor-model-parallel-size "
                                                  "%d",
                             (long long)cfg->heads, (long long)cfg->query_groups, tp);
    tsr_status st = tsr_attention_mask_check(&cfg->mask, info->seq);
    if (st != TSR_OK)
        return st;
    int64_t c = info->hidden, d = cfg->head_dim;
    int64_t qkv_out = (cfg->heads + 2 * cfg->query_groups) * d;
    int64_t hd = cfg->heads / tp * d, gd = cfg->query_groups / tp * d, hl = cfg->heads / tp;
    bool sp = info->sequence_parallel;
    tsr_decl_param(decl, true, "linear_qkv.weight", qkv_out, c, TSR_PARAM_SPLIT_ROWS,
                   TSR_INIT_NORMAL, cfg->init_std, TSR_PARAM_DECAY | TSR_PARAM_NO_FP32_READ);
    tsr_decl_param(decl, cfg->bias, "linear_qkv.bias", qkv_out, 1, TSR_PARAM_SPLIT_ROWS,
                   TSR_INIT_CONSTANT, 0.0f, 0);
    tsr_decl_param(decl, true, "linear_proj.weight", c, cfg->heads * d, TSR_PARAM_SPLIT_COLS,
                   TSR_INIT_NORMAL, cfg->out_init_std, TSR_PARAM_DECAY | TSR_PARAM_NO_FP32_READ);
    tsr_decl_param(decl, cfg->bias, "linear_proj.bias", c, 1, TSR_PARAM_SPLIT_NONE,
                   TSR_INIT_CONSTANT, 0.0f, 0);
    tsr_lora_declare_params(decl, &cfg->lora, TSR_LORA_LINEAR_QKV, "linear_qkv", QKV_W, qkv_out,
                            c, TSR_PARAM_SPLIT_ROWS);
    tsr_lora_declare_params(decl, &cfg->lora, TSR_LORA_LINEAR_PROJ, "linear_proj", PROJ_W, c,
                            cfg->heads * d, TSR_PARAM_SPLIT_NONE);
    tsr_buffer_life S = TSR_BUFFER_SAVED, X = TSR_BUFFER_SCRATCH;
    tsr_buffer_rows R = TSR_ROWS_TOKENS;
    tsr_decl_activation(decl, tsr_decl_buffer(decl, sp, "in_full", R, c, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "q", R, hd, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "k", R, gd, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "v", R, gd, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "att", R, hd, S));
    tsr_decl_buffer(decl, true, "lse", R, hl, S);
    tsr_decl_buffer(decl, true, "qkv", R, qkv_out / tp, X);
    tsr_decl_buffer(decl, sp, "out_full", R, c, X);
    tsr_decl_buffer(decl, true, "d_att", R, hd, X);
    tsr_decl_buffer(decl, true, "d_q", R, hd, X);
    tsr_decl_buffer(decl, true, "d_k", R, gd, X);
    tsr_decl_buffer(decl, true, "d_v", R, gd, X);
    tsr_decl_buffer(decl, cfg->rotary, "d_q_pre", R, hd, X);
    tsr_decl_buffer(decl, cfg->rotary, "d_k_pre", R, gd, X);
    tsr_decl_buffer(decl, true, "d_qkv", R, qkv_out / tp, X);
    tsr_decl_buffer(decl, tp > 1 || sp, "d_in_full", R, c, X);
    tsr_decl_buffer(decl, sp, "d_in_local", TSR_ROWS_LOCAL, c, X);
    tsr_decl_buffer(decl, true, "attention_tiles", TSR_ROWS_FIXED,
                    (int64_t)tsr_attention_scratch_floats(info->seq, d), X);
    tsr_lora_declare_buffers(decl, &cfg->lora, TSR_LORA_LINEAR_QKV, c);
    tsr_lora_declare_buffers(decl, &cfg->lora, TSR_LORA_LINEAR_PROJ, hd);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = c;
    decl->keeps_input = !sp;
    decl->decodes = !sp; /* attention_decode: k and v of earlier steps stay in K, V */
    return TSR_OK;
}

typedef struct sizes {
    int64_t b, t, c, d, nt, hl, gl, hd, gd, qkv_local;
} sizes;

static sizes sizes_of(const tsr_module_run *run)
{
    const tsr_module_info *info = run->info;
    const tsr_attention_config *cfg = info->config;
    int tp = info->tp_size;
    sizes s;
    s.b = info->micro_batch;
    s.t = info->seq;
    s.c = info->hidden;
    s.d = cfg->head_dim;
    s.nt = s.b * s.t;
    s.hl = cfg->heads / tp;
    s.gl = cfg->query_groups / tp;
    s.hd = s.hl * s.d;
    s.gd = s.gl * s.d;
    s.qkv_local = (s.hl + 2 * s.gl) * s.d;
    return s;
}

static tsr_lora_site qkv_adapter(const tsr_module_run *run, const sizes *s)
{
    const tsr_attention_config *cfg = run->info->config;
    return (tsr_lora_site){&cfg->lora, TSR_LORA_LINEAR_QKV, QKV_LORA_A, QKV_LORA_B, QKV_XA,
                           QKV_XD,     QKV_DXA,             s->c,       s->qkv_local};
}

static tsr_lora_site proj_adapter(const tsr_module_run *run, const sizes *s)
{
    const tsr_attention_config *cfg = run->info->config;
    return (tsr_lora_site){&cfg->lora, TSR_LORA_LINEAR_PROJ, PROJ_LORA_A, PROJ_LORA_B, PROJ_XA,
                           PROJ_XD,    PROJ_DXA,             s->hd,       s->c};
}

static void zero(float *x, int64_t n)
{
    memset(x, 0, (size_t)n * sizeof *x);
}

static const tsr_dropout *probs_dropout(const tsr_module_run *run, double p, tsr_dropout *dr)
{
    if (p <= 0.0)
        return NULL;
    const tsr_attention_config *cfg = run->info->config;
    tsr_module_dropout(run, SITE_PROBS, p, false, dr);
    dr->head_offset = (int64_t)run->info->tp_rank * (cfg->heads / run->info->tp_size);
    dr->heads_global = cfg->heads;
    return dr;
}

/* The layer's pattern with the micro batch's documents and prefixes. */
static tsr_attn_mask mask_of(const tsr_module_run *run)
{
    const tsr_attention_config *cfg = run->info->config;
    tsr_attn_mask mask = cfg->mask;
    mask.doc_start = run->io->doc_start;
    mask.prefix_lo = run->io->prefix_lo;
    mask.prefix_hi = run->io->prefix_hi;
    return mask;
}

/* Generation: one token per sample at position p = io->decode_position.
 * The saved K and V (B, T, groups) are the key/value cache: row (s, p) gets
 * this step's, and the query attends to rows 0..p of its sample. Rows are B
 * (tsr_module_rows); the scratch of the whole-sequence forward holds the
 * step's q, k, v, output and scores. */
static tsr_status attention_decode(const tsr_module_run *run, const float *in, float *out)
{
    const tsr_attention_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    sizes s = sizes_of(run);
    int64_t p = run->io->decode_position, rows = tsr_module_rows(run, TSR_ROWS_TOKENS);
    if (p >= s.t || rows != s.b)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "generation step at position %lld of a %lld-token cache", (long long)p,
                             (long long)s.t);
    tsr_linear_forward(buf[QKV], in, w[QKV_W], w[QKV_B], s.b, s.c, s.qkv_local);
    tsr_lora_site qkv = qkv_adapter(run, &s), proj = proj_adapter(run, &s);
    tsr_status st = tsr_lora_forward(run, &qkv, in, buf[QKV]);
    if (st != TSR_OK)
        return st;
    float *q = buf[D_Q], *k = buf[D_K], *v = buf[D_V];
    tsr_qkv_split_forward(q, k, v, buf[QKV], s.b, s.gl, s.hl / s.gl, s.d);
    if (cfg->rotary) {
        tsr_rope_forward(q, q, s.b, 1, s.hl, s.d, p, cfg->rotary_base);
        tsr_rope_forward(k, k, s.b, 1, s.gl, s.d, p, cfg->rotary_base);
    }
    for (int64_t b = 0; b < s.b; b++) {
        memcpy(buf[K] + (b * s.t + p) * s.gd, k + b * s.gd, (size_t)s.gd * sizeof(float));
        memcpy(buf[V] + (b * s.t + p) * s.gd, v + b * s.gd, (size_t)s.gd * sizeof(float));
    }
    tsr_attention_decode(buf[D_ATT], q, buf[K], buf[V], s.b, s.t, p, s.hl, s.gl, s.d, &cfg->mask,
                         buf[D_QKV]);
    tsr_linear_forward(out, buf[D_ATT], w[PROJ_W], tsr_row_parallel_bias(run, w[PROJ_B]), s.b,
                       s.hd, s.c);
    if ((st = tsr_lora_forward(run, &proj, buf[D_ATT], out)) != TSR_OK)
        return st;
    return tsr_row_output_forward(run, out, out, s.c);
}

static tsr_status attention_forward(const tsr_module_run *run, const float *in, float *out)
{
    if (run->io->decode_position >= 0)
        return attention_decode(run, in, out);
    const tsr_attention_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    sizes s = sizes_of(run);
    const float *x = NULL;
    tsr_status st = tsr_column_input_forward(run, in, buf[IN_FULL], s.c, &x);
    if (st != TSR_OK)
        return st;
    tsr_linear_forward(buf[QKV], x, w[QKV_W], w[QKV_B], s.nt, s.c, s.qkv_local);
    tsr_lora_site qkv = qkv_adapter(run, &s), proj = proj_adapter(run, &s);
    if ((st = tsr_lora_forward(run, &qkv, x, buf[QKV])) != TSR_OK)
        return st;
    tsr_qkv_split_forward(buf[Q], buf[K], buf[V], buf[QKV], s.nt, s.gl, s.hl / s.gl, s.d);
    if (cfg->rotary) {
        const int32_t *docs = cfg->reset_positions ? run->io->doc_start : NULL;
        tsr_rope_forward_docs(buf[Q], buf[Q], docs, s.b, s.t, s.hl, s.d, 0, cfg->rotary_base);
        tsr_rope_forward_docs(buf[K], buf[K], docs, s.b, s.t, s.gl, s.d, 0, cfg->rotary_base);
    }
    /* held in 16 bits for backward, which recomputes the scores against
     * the log-sum-exp: the forward must use those same values */
    tsr_module_round_activation(run, buf[Q], s.nt * s.hd);
    tsr_module_round_activation(run, buf[K], s.nt * s.gd);
    tsr_module_round_activation(run, buf[V], s.nt * s.gd);
    tsr_dropout dr;
    tsr_attn_mask mask = mask_of(run);
    tsr_attention_forward(buf[ATT], buf[LSE], buf[Q], buf[K], buf[V], s.b, s.t, s.hl, s.gl, s.d,
                          &mask,
                          probs_dropout(run, run->train ? cfg->dropout : 0.0, &dr),
                          buf[ATTN_SCRATCH]);
    float *target = tsr_row_output_target(run, out, buf[OUT_FULL]);
    tsr_linear_forward(target, buf[ATT], w[PROJ_W], tsr_row_parallel_bias(run, w[PROJ_B]), s.nt,
                       s.hd, s.c);
    if ((st = tsr_lora_forward(run, &proj, buf[ATT], target)) != TSR_OK)
        return st;
    return tsr_row_output_forward(run, out, target, s.c);
}

static tsr_status attention_backward(const tsr_module_run *run, const float *in,
                                     const float *out, const float *dout, float *din)
{
    (void)out;
    const tsr_attention_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    float *const *g = run->grads;
    sizes s = sizes_of(run);
    const float *d_full = NULL;
    tsr_status st = tsr_row_output_backward(run, dout, buf[OUT_FULL], s.c, &d_full);
    if (st != TSR_OK)
        return st;
    zero(buf[D_ATT], s.nt * s.hd);
    tsr_linear_backward(buf[D_ATT], g[PROJ_W], g[PROJ_B], d_full, buf[ATT], w[PROJ_W], s.nt,
                        s.hd, s.c);
    tsr_lora_site qkv = qkv_adapter(run, &s), proj = proj_adapter(run, &s);
    if ((st = tsr_lora_backward(run, &proj, buf[ATT], d_full, buf[D_ATT])) != TSR_OK)
        return st;
    zero(buf[D_Q], s.nt * s.hd);
    zero(buf[D_K], s.nt * s.gd);
    zero(buf[D_V], s.nt * s.gd);
    tsr_dropout dr;
    tsr_attn_mask mask = mask_of(run);
    tsr_attention_backward(buf[D_Q], buf[D_K], buf[D_V], buf[D_ATT], buf[Q], buf[K], buf[V],
                           buf[ATT], buf[LSE], s.b, s.t, s.hl, s.gl, s.d, &mask,
                           probs_dropout(run, cfg->dropout, &dr), buf[ATTN_SCRATCH]);
    const float *dq = buf[D_Q], *dk = buf[D_K];
    if (cfg->rotary) {
        zero(buf[D_Q_PRE], s.nt * s.hd);
        zero(buf[D_K_PRE], s.nt * s.gd);
        const int32_t *docs = cfg->reset_positions ? run->io->doc_start : NULL;
        tsr_rope_backward_docs(buf[D_Q_PRE], buf[D_Q], docs, s.b, s.t, s.hl, s.d, 0,
                               cfg->rotary_base);
        tsr_rope_backward_docs(buf[D_K_PRE], buf[D_K], docs, s.b, s.t, s.gl, s.d, 0,
                               cfg->rotary_base);
        dq = buf[D_Q_PRE];
        dk = buf[D_K_PRE];
    }
    zero(buf[D_QKV], s.nt * s.qkv_local);
    tsr_qkv_split_backward(buf[D_QKV], dq, dk, buf[D_V], s.nt, s.gl, s.hl / s.gl, s.d);
    const float *x = run->info->sequence_parallel ? buf[IN_FULL] : in;
    float *d_in = tsr_column_input_grad_target(run, din, buf[D_IN_FULL], s.c);
    tsr_linear_backward(d_in, g[QKV_W], g[QKV_B], buf[D_QKV], x, w[QKV_W], s.nt, s.c,
                        s.qkv_local);
    if ((st = tsr_lora_backward(run, &qkv, x, buf[D_QKV], d_in)) != TSR_OK)
        return st;
    return tsr_column_input_backward(run, din, buf[D_IN_FULL], buf[D_IN_LOCAL], s.c);
}

const tsr_module_kind tsr_module_attention = {"attention", attention_declare, attention_forward,
                                              attention_backward, NULL};
