/*
 * gpt_step.c - one micro batch through the GPT: forward, the fused LM head
 * and cross-entropy, backward, evaluation and plain logits.
 *
 * Shapes: N = B*T rows; C hidden; Hq heads, G query groups, D head dim;
 * F MLP width (fc1 has 2F outputs under SwiGLU); V padded vocabulary.
 */
#include <math.h>
#include <string.h>

#include "gpt_internal.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

enum { DROP_EMBEDDING = 0, DROP_ATTENTION_OUT = 1, DROP_MLP_OUT = 2, DROP_ATTENTION_PROBS = 3 };

static void zero(float *x, int64_t n)
{
    memset(x, 0, (size_t)n * sizeof *x);
}

static bool use_layernorm(const tsr_gpt *g)
{
    return g->cfg.normalization == TSR_NORM_LAYERNORM;
}

static void norm_forward(const tsr_gpt *g, float *out, float *mean, float *rstd, const float *in,
                         const float *w, const float *b)
{
    int64_t n = g->d.micro_batch * g->d.seq;
    float eps = (float)g->cfg.norm_epsilon;
    if (use_layernorm(g))
        tsr_layernorm_forward(out, mean, rstd, in, w, b, n, g->d.hidden, eps);
    else
        tsr_rmsnorm_forward(out, rstd, in, w, n, g->d.hidden, eps);
}

static void norm_backward(const tsr_gpt *g, float *din, float *dw, float *db, const float *dout,
                          const float *in, const float *w, const float *mean, const float *rstd)
{
    int64_t n = g->d.micro_batch * g->d.seq;
    if (use_layernorm(g))
        tsr_layernorm_backward(din, dw, db, dout, in, w, mean, rstd, n, g->d.hidden);
    else
        tsr_rmsnorm_backward(din, dw, dout, in, w, rstd, n, g->d.hidden);
}

/* Dropout of hidden states is keyed by (seed, layer, site, iteration) and
 * the global sample index, so the mask is the same in every layout. */
static tsr_dropout dropout_spec(const tsr_gpt *g, const tsr_microbatch *mb, int64_t layer,
                                int site, double p)
{
    tsr_dropout dr;
    memset(&dr, 0, sizeof dr);
    dr.p = (float)p;
    uint64_t key = tsr_rng_key((uint64_t)g->cfg.seed, "dropout");
    key = tsr_rng_key_mix(key, (uint64_t)(layer * 4 + site));
    dr.key = tsr_rng_key_mix(key, (uint64_t)mb->iteration);
    dr.sample_offset = mb->first_sample;
    dr.t_offset = 0;
    dr.t_global = g->d.seq;
    dr.head_offset = 0;
    dr.heads_global = g->d.heads;
    return dr;
}

static void rope_apply(const tsr_gpt *g, float *x, int64_t heads)
{
    tsr_rope_forward(x, x, g->d.micro_batch, g->d.seq, heads, g->d.head_dim, 0,
                     (float)g->cfg.rotary_base);
}

/* --------------------------------------------------------------- forward */

static void forward_layers(tsr_gpt *g, const tsr_microbatch *mb, bool train)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t B = d->micro_batch, T = d->seq, C = d->hidden, n = B * T;
    int64_t hd = d->heads * d->head_dim;
    double p_hidden = train ? g->cfg.hidden_dropout : 0.0;
    double p_attn = train ? g->cfg.attention_dropout : 0.0;

    tsr_embedding_forward(g->emb, mb->tokens, g->wte, n, C, 0, d->padded_vocab);
    if (g->wpe != NULL)
        tsr_position_add_forward(g->emb, g->wpe, B, T, C, 0);
    if (p_hidden > 0.0) {
        tsr_dropout dr = dropout_spec(g, mb, -1, DROP_EMBEDDING, p_hidden);
        tsr_dropout_forward(g->emb, g->emb, B, T, C, &dr);
    }
    const float *x = g->emb;
    for (int64_t l = 0; l < d->layers; l++) {
        const layer_weights *w = &g->w[l];
        layer_acts *a = &g->a[l];
        norm_forward(g, a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w, w->ln1_b);
        tsr_linear_forward(g->qkv, a->ln1, w->qkv_w, w->qkv_b, n, C, d->qkv_out);
        tsr_qkv_split_forward(a->q, a->k, a->v, g->qkv, n, d->groups, d->heads / d->groups,
                              d->head_dim);
        if (g->cfg.position_embedding_type == TSR_POS_ROPE) {
            rope_apply(g, a->q, d->heads);
            rope_apply(g, a->k, d->groups);
        }
        tsr_dropout attn_dr = dropout_spec(g, mb, l, DROP_ATTENTION_PROBS, p_attn);
        tsr_attention_forward(a->att, a->lse, a->q, a->k, a->v, B, T, d->heads, d->groups,
                              d->head_dim, p_attn > 0.0 ? &attn_dr : NULL, g->attn_scratch);
        tsr_linear_forward(g->branch, a->att, w->proj_w, w->proj_b, n, hd, C);
        if (p_hidden > 0.0) {
            tsr_dropout dr = dropout_spec(g, mb, l, DROP_ATTENTION_OUT, p_hidden);
            tsr_dropout_forward(g->branch, g->branch, B, T, C, &dr);
        }
        tsr_add_forward(a->res1, x, g->branch, n * C);

        norm_forward(g, a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, w->ln2_w, w->ln2_b);
        tsr_linear_forward(a->fc1, a->ln2, w->fc1_w, w->fc1_b, n, C, d->fc1_out);
        if (g->cfg.swiglu)
            tsr_swiglu_forward(a->act, a->fc1, n, d->ffn);
        else
            tsr_gelu_forward(a->act, a->fc1, n * d->ffn);
        tsr_linear_forward(g->branch, a->act, w->fc2_w, w->fc2_b, n, d->ffn, C);
        if (p_hidden > 0.0) {
            tsr_dropout dr = dropout_spec(g, mb, l, DROP_MLP_OUT, p_hidden);
            tsr_dropout_forward(g->branch, g->branch, B, T, C, &dr);
        }
        tsr_add_forward(a->res2, a->res1, g->branch, n * C);
        x = a->res2;
    }
    norm_forward(g, g->lnf, g->lnf_mean, g->lnf_rstd, x, g->lnf_w, g->lnf_b);
}

/* Logits of rows [r0, r0+rows) into g->logits, padded columns at -inf. */
static void head_logits(tsr_gpt *g, int64_t r0, int64_t rows)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t V = d->padded_vocab;
    tsr_linear_forward(g->logits, g->lnf + r0 * d->hidden, g->head_w, NULL, rows, d->hidden, V);
    if (d->vocab < V)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = d->vocab; j < V; j++)
                g->logits[r * V + j] = -INFINITY;
}

/* Loss of rows [r0, r0+rows) and, when dloss is given, the gradient folded
 * into the head weight and the final-norm output. */
static void head_chunk(tsr_gpt *g, const tsr_microbatch *mb, int64_t r0, int64_t rows,
                       bool backward)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t V = d->padded_vocab;
    head_logits(g, r0, rows);
    tsr_ce_row_max(g->row_max + r0, g->logits, rows, V);
    tsr_ce_sumexp_target(g->sumexp + r0, g->target_logit + r0, g->logits, g->row_max + r0,
                         mb->targets + r0, rows, V, 0);
    tsr_ce_loss(g->row_loss + r0, g->sumexp + r0, g->row_max + r0, g->target_logit + r0, rows);
    if (!backward)
        return;
    tsr_ce_logits_to_grad(g->logits, g->row_max + r0, g->sumexp + r0, mb->targets + r0,
                          g->row_dloss + r0, rows, V, 0);
    tsr_linear_backward(g->d_lnf + r0 * d->hidden, g->g_head_w, NULL, g->logits,
                        g->lnf + r0 * d->hidden, g->head_w, rows, d->hidden, V);
}

static double masked_mean_loss(const tsr_gpt *g, const float *mask, double *tokens)
{
    int64_t n = g->d.micro_batch * g->d.seq;
    double sum = 0.0, count = 0.0;
    for (int64_t r = 0; r < n; r++) {
        sum += (double)mask[r] * (double)g->row_loss[r];
        count += mask[r];
    }
    *tokens = count;
    return count > 0.0 ? sum / count : 0.0;
}

/* -------------------------------------------------------------- backward */

static void backward_layers(tsr_gpt *g, const tsr_microbatch *mb)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t B = d->micro_batch, T = d->seq, C = d->hidden, n = B * T;
    int64_t hd = d->heads * d->head_dim, gd = d->groups * d->head_dim;
    double p_hidden = g->cfg.hidden_dropout, p_attn = g->cfg.attention_dropout;
    const float *last = d->layers > 0 ? g->a[d->layers - 1].res2 : g->emb;

    zero(g->d_stream, n * C);
    norm_backward(g, g->d_stream, g->g_lnf_w, g->g_lnf_b, g->d_lnf, last, g->lnf_w, g->lnf_mean,
                  g->lnf_rstd);
    for (int64_t l = d->layers - 1; l >= 0; l--) {
        const layer_weights *w = &g->w[l];
        layer_weights *gw = &g->g[l];
        layer_acts *a = &g->a[l];
        const float *x = l > 0 ? g->a[l - 1].res2 : g->emb;
        const float *branch_grad = g->d_stream;

        /* MLP branch: res2 = res1 + dropout(fc2(act(fc1(norm2(res1))))) */
        if (p_hidden > 0.0) {
            tsr_dropout dr = dropout_spec(g, mb, l, DROP_MLP_OUT, p_hidden);
            zero(g->d_branch, n * C);
            tsr_dropout_backward(g->d_branch, g->d_stream, B, T, C, &dr);
            branch_grad = g->d_branch;
        }
        zero(g->d_act, n * d->ffn);
        tsr_linear_backward(g->d_act, gw->fc2_w, gw->fc2_b, branch_grad, a->act, w->fc2_w, n,
                            d->ffn, C);
        zero(g->d_fc1, n * d->fc1_out);
        if (g->cfg.swiglu)
            tsr_swiglu_backward(g->d_fc1, g->d_act, a->fc1, n, d->ffn);
        else
            tsr_gelu_backward(g->d_fc1, g->d_act, a->fc1, n * d->ffn);
        zero(g->d_ln, n * C);
        tsr_linear_backward(g->d_ln, gw->fc1_w, gw->fc1_b, g->d_fc1, a->ln2, w->fc1_w, n, C,
                            d->fc1_out);
        norm_backward(g, g->d_stream, gw->ln2_w, gw->ln2_b, g->d_ln, a->res1, w->ln2_w,
                      a->ln2_mean, a->ln2_rstd);

        /* attention branch: res1 = x + dropout(proj(attention(qkv(norm1(x))))) */
        branch_grad = g->d_stream;
        if (p_hidden > 0.0) {
            tsr_dropout dr = dropout_spec(g, mb, l, DROP_ATTENTION_OUT, p_hidden);
            zero(g->d_branch, n * C);
            tsr_dropout_backward(g->d_branch, g->d_stream, B, T, C, &dr);
            branch_grad = g->d_branch;
        }
        zero(g->d_att, n * hd);
        tsr_linear_backward(g->d_att, gw->proj_w, gw->proj_b, branch_grad, a->att, w->proj_w, n,
                            hd, C);
        zero(g->d_q, n * hd);
        zero(g->d_k, n * gd);
        zero(g->d_v, n * gd);
        tsr_dropout attn_dr = dropout_spec(g, mb, l, DROP_ATTENTION_PROBS, p_attn);
        tsr_attention_backward(g->d_q, g->d_k, g->d_v, g->d_att, a->q, a->k, a->v, a->att,
                               a->lse, B, T, d->heads, d->groups, d->head_dim,
                               p_attn > 0.0 ? &attn_dr : NULL, g->attn_scratch);
        const float *dq = g->d_q, *dk = g->d_k;
        if (g->cfg.position_embedding_type == TSR_POS_ROPE) {
            zero(g->d_q_pre, n * hd);
            zero(g->d_k_pre, n * gd);
            tsr_rope_backward(g->d_q_pre, g->d_q, B, T, d->heads, d->head_dim, 0,
                              (float)g->cfg.rotary_base);
            tsr_rope_backward(g->d_k_pre, g->d_k, B, T, d->groups, d->head_dim, 0,
                              (float)g->cfg.rotary_base);
            dq = g->d_q_pre;
            dk = g->d_k_pre;
        }
        zero(g->d_qkv, n * d->qkv_out);
        tsr_qkv_split_backward(g->d_qkv, dq, dk, g->d_v, n, d->groups, d->heads / d->groups,
                               d->head_dim);
        zero(g->d_ln, n * C);
        tsr_linear_backward(g->d_ln, gw->qkv_w, gw->qkv_b, g->d_qkv, a->ln1, w->qkv_w, n, C,
                            d->qkv_out);
        norm_backward(g, g->d_stream, gw->ln1_w, gw->ln1_b, g->d_ln, x, w->ln1_w, a->ln1_mean,
                      a->ln1_rstd);
    }
    const float *d_emb = g->d_stream;
    if (p_hidden > 0.0) {
        tsr_dropout dr = dropout_spec(g, mb, -1, DROP_EMBEDDING, p_hidden);
        zero(g->d_branch, n * C);
        tsr_dropout_backward(g->d_branch, g->d_stream, B, T, C, &dr);
        d_emb = g->d_branch;
    }
    if (g->g_wpe != NULL)
        tsr_position_add_backward(g->g_wpe, d_emb, B, T, C, 0);
    tsr_embedding_backward(g->g_wte, d_emb, mb->tokens, n, C, 0, d->padded_vocab);
}

/* ------------------------------------------------------------ interfaces */

static tsr_status check_tokens(const tsr_gpt *g, const int32_t *tokens, const int32_t *targets)
{
    int64_t n = g->d.micro_batch * g->d.seq;
    for (int64_t r = 0; r < n; r++) {
        if (tokens[r] < 0 || tokens[r] >= g->d.vocab ||
            (targets != NULL && (targets[r] < 0 || targets[r] >= g->d.vocab)))
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "token id %d at position %lld is outside the vocabulary of "
                                 "%lld; the dataset and --vocab-size disagree",
                                 (int)(tokens[r] < 0 || tokens[r] >= g->d.vocab ? tokens[r]
                                                                                 : targets[r]),
                                 (long long)r, (long long)g->d.vocab);
    }
    return TSR_OK;
}

static tsr_status gpt_train_microbatch(void *self, const tsr_microbatch *mb, float loss_scale,
                                       double *loss)
{
    tsr_gpt *g = self;
    const tsr_gpt_dims *d = &g->d;
    int64_t n = d->micro_batch * d->seq;
    tsr_status st = check_tokens(g, mb->tokens, mb->targets);
    if (st != TSR_OK)
        return st;
    double tokens = 0.0;
    for (int64_t r = 0; r < n; r++)
        tokens += mb->mask[r];
    float per_token = tokens > 0.0 ? loss_scale / (float)tokens : 0.0f;
    for (int64_t r = 0; r < n; r++)
        g->row_dloss[r] = mb->mask[r] * per_token;

    forward_layers(g, mb, true);
    zero(g->d_lnf, n * d->hidden);
    for (int64_t r0 = 0; r0 < n; r0 += d->head_chunk_rows) {
        int64_t rows = n - r0 < d->head_chunk_rows ? n - r0 : d->head_chunk_rows;
        head_chunk(g, mb, r0, rows, true);
    }
    *loss = masked_mean_loss(g, mb->mask, &tokens);
    backward_layers(g, mb);
    return TSR_OK;
}

static tsr_status gpt_eval_microbatch(void *self, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    tsr_gpt *g = self;
    const tsr_gpt_dims *d = &g->d;
    int64_t n = d->micro_batch * d->seq, V = d->padded_vocab;
    tsr_status st = check_tokens(g, mb->tokens, mb->targets);
    if (st != TSR_OK)
        return st;
    forward_layers(g, mb, false);
    memset(out, 0, sizeof *out);
    for (int64_t r0 = 0; r0 < n; r0 += d->head_chunk_rows) {
        int64_t rows = n - r0 < d->head_chunk_rows ? n - r0 : d->head_chunk_rows;
        head_chunk(g, mb, r0, rows, false);
        for (int64_t r = 0; r < rows; r++) {
            float m = mb->mask[r0 + r];
            if (m == 0.0f)
                continue;
            const float *row = g->logits + r * V;
            int64_t best = 0;
            for (int64_t j = 1; j < d->vocab; j++)
                if (row[j] > row[best])
                    best = j;
            out->correct += m * (best == mb->targets[r0 + r]);
            out->loss_sum += m * g->row_loss[r0 + r];
            out->tokens += m;
        }
    }
    return TSR_OK;
}

tsr_status tsr_gpt_logits(tsr_gpt *g, const int32_t *tokens, float *logits)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t n = d->micro_batch * d->seq, V = d->padded_vocab;
    tsr_status st = check_tokens(g, tokens, NULL);
    if (st != TSR_OK)
        return st;
    tsr_microbatch mb = {tokens, NULL, NULL, 0, 0};
    forward_layers(g, &mb, false);
    for (int64_t r0 = 0; r0 < n; r0 += d->head_chunk_rows) {
        int64_t rows = n - r0 < d->head_chunk_rows ? n - r0 : d->head_chunk_rows;
        head_logits(g, r0, rows);
        for (int64_t r = 0; r < rows; r++)
            memcpy(logits + (r0 + r) * d->vocab, g->logits + r * V,
                   (size_t)d->vocab * sizeof *logits);
    }
    return TSR_OK;
}

tsr_model tsr_gpt_as_model(tsr_gpt *g)
{
    tsr_model m;
    m.self = g;
    m.params = g->params;
    m.grads = g->grads;
    m.param_count = g->numel;
    m.spans = g->spans;
    m.span_count = g->span_count;
    m.tensors = g->tensors;
    m.tensor_count = g->param_count_entries;
    m.train_microbatch = gpt_train_microbatch;
    m.eval_microbatch = gpt_eval_microbatch;
    return m;
}
