/*
 * gpt_step.c - one micro batch through the GPT: forward, the fused LM head
 * and cross-entropy, backward, evaluation and plain logits.
 *
 * Shapes: B micro batch, T sequence, C hidden; this rank's Hq heads, G
 * query groups, F MLP columns and V vocabulary rows (all of them on one
 * rank); D head dim. n_tok = B*T rows, n_loc = B*T/tp under sequence
 * parallelism (else n_tok).
 *
 * Tensor parallelism follows Megatron: qkv and fc1 are column-parallel,
 * proj and fc2 row-parallel, embedding and LM head vocab-parallel. The
 * communication sits in five helpers (enter/leave a parallel region, in
 * forward and backward), so the layer code reads like the 1-rank model:
 *   without SP: forward all-reduce after proj and fc2 (g), backward
 *               all-reduce of the qkv and fc1 input gradients (f);
 *   with SP:    all-gather before qkv and fc1, reduce-scatter after proj
 *               and fc2, and the reverse in backward.
 * A row-parallel layer's bias is added by tensor-parallel rank 0 only, so
 * the reduction adds it once.
 */
#include <math.h>
#include <string.h>

#include "gpt_internal.h"
#include "tessera/kernels.h"
#include "tessera/rng.h"

enum { DROP_EMBEDDING = 0, DROP_ATTENTION_OUT = 1, DROP_MLP_OUT = 2, DROP_ATTENTION_PROBS = 3 };

#define TRY(call)                                                                             \
    do {                                                                                     \
        tsr_status try_status_ = (call);                                                     \
        if (try_status_ != TSR_OK)                                                           \
            return try_status_;                                                              \
    } while (0)

static void zero(float *x, int64_t n)
{
    memset(x, 0, (size_t)n * sizeof *x);
}

static int64_t n_tok(const tsr_gpt *g)
{
    return g->d.micro_batch * g->d.seq;
}

static int64_t n_loc(const tsr_gpt *g)
{
    return g->d.micro_batch * g->d.l_seq;
}

/* global position of local row t = 0 of the residual stream */
static int64_t seq_offset(const tsr_gpt *g)
{
    return g->d.sp ? (int64_t)g->d.tp_rank * g->d.l_seq : 0;
}

static const float *row_parallel_bias(const tsr_gpt *g, const float *bias)
{
    return g->d.tp_rank == 0 ? bias : NULL;
}

/* ------------------------------------------- tensor-parallel region edges */

/* forward, before a column-parallel layer: the norm output of this rank's
 * rows becomes the whole sequence (SP: all-gather; else already whole) */
static tsr_status enter_forward(tsr_gpt *g, float *full, const float *local)
{
    if (!g->d.sp)
        return TSR_OK;
    return tsr_tp_gather_sequence(&g->tp, full, local, g->d.micro_batch, g->d.l_seq,
                                  g->d.hidden);
}

/* forward, after a row-parallel layer: partial sums -> this rank's rows */
static tsr_status leave_forward(tsr_gpt *g, float *local, float *full)
{
    if (g->d.sp)
        return tsr_tp_scatter_sequence(&g->tp, local, full, g->d.micro_batch, g->d.l_seq,
                                       g->d.hidden);
    return tsr_tp_allreduce_sum(&g->tp, full, n_tok(g) * g->d.hidden); /* local == full */
}

/* backward, at a row-parallel layer's output: this rank's gradient rows ->
 * the whole sequence */
static tsr_status leave_backward(tsr_gpt *g, float *full, const float *local)
{
    return enter_forward(g, full, local);
}

/* backward, at a column-parallel layer's input: partial input gradients ->
 * this rank's rows of their sum */
static tsr_status enter_backward(tsr_gpt *g, float *local, float *full)
{
    return leave_forward(g, local, full);
}

/* ---------------------------------------------------------------- pieces */

static bool use_layernorm(const tsr_gpt *g)
{
    return g->cfg.normalization == TSR_NORM_LAYERNORM;
}

static void norm_forward(const tsr_gpt *g, float *out, float *mean, float *rstd, const float *in,
                         const float *w, const float *b)
{
    float eps = (float)g->cfg.norm_epsilon;
    if (use_layernorm(g))
        tsr_layernorm_forward(out, mean, rstd, in, w, b, n_loc(g), g->d.hidden, eps);
    else
        tsr_rmsnorm_forward(out, rstd, in, w, n_loc(g), g->d.hidden, eps);
}

static void norm_backward(const tsr_gpt *g, float *din, float *dw, float *db, const float *dout,
                          const float *in, const float *w, const float *mean, const float *rstd)
{
    if (use_layernorm(g))
        tsr_layernorm_backward(din, dw, db, dout, in, w, mean, rstd, n_loc(g), g->d.hidden);
    else
        tsr_rmsnorm_backward(din, dw, dout, in, w, rstd, n_loc(g), g->d.hidden);
}

/* Dropout masks are keyed by (seed, layer, site, iteration) and the global
 * (sample, position, channel or head), so they are the same in every
 * layout. */
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
    dr.t_global = g->d.seq;
    dr.t_offset = site == DROP_ATTENTION_PROBS ? 0 : seq_offset(g);
    dr.head_offset = (int64_t)g->d.tp_rank * g->d.l_heads;
    dr.heads_global = g->d.heads;
    return dr;
}

static void rope_apply(const tsr_gpt *g, float *x, int64_t heads)
{
    tsr_rope_forward(x, x, g->d.micro_batch, g->d.seq, heads, g->d.head_dim, 0,
                     (float)g->cfg.rotary_base);
}

/* --------------------------------------------------------------- forward */

static tsr_status embed(tsr_gpt *g, const tsr_microbatch *mb, bool train)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t C = d->hidden;
    /* each rank looks up its vocabulary rows; the sum over ranks is the
     * embedding (g: all-reduce, or reduce-scatter under SP) */
    float *full = d->sp ? g->emb_full : g->emb;
    tsr_embedding_forward(full, mb->tokens, g->wte, n_tok(g), C, d->vocab_start, d->l_vocab);
    TRY(leave_forward(g, g->emb, full));
    if (g->wpe != NULL)
        tsr_position_add_forward(g->emb, g->wpe, d->micro_batch, d->l_seq, C, seq_offset(g));
    if (train && g->cfg.hidden_dropout > 0.0) {
        tsr_dropout dr = dropout_spec(g, mb, -1, DROP_EMBEDDING, g->cfg.hidden_dropout);
        tsr_dropout_forward(g->emb, g->emb, d->micro_batch, d->l_seq, C, &dr);
    }
    return TSR_OK;
}

/* out_local = x + dropout(reduced row-parallel output in g->branch_full) */
static tsr_status add_branch(tsr_gpt *g, const tsr_microbatch *mb, float *out, const float *x,
                             int64_t layer, int site, bool train)
{
    const tsr_gpt_dims *d = &g->d;
    TRY(leave_forward(g, g->branch_local, g->branch_full));
    if (train && g->cfg.hidden_dropout > 0.0) {
        tsr_dropout dr = dropout_spec(g, mb, layer, site, g->cfg.hidden_dropout);
        tsr_dropout_forward(g->branch_local, g->branch_local, d->micro_batch, d->l_seq,
                            d->hidden, &dr);
    }
    tsr_add_forward(out, x, g->branch_local, n_loc(g) * d->hidden);
    return TSR_OK;
}

/* layer l of the model, li of this rank */
static tsr_status forward_layer(tsr_gpt *g, const tsr_microbatch *mb, int64_t l, int64_t li,
                                const float *x, bool train)
{
    const tsr_gpt_dims *d = &g->d;
    const layer_weights *w = &g->w[li];
    layer_acts *a = &g->a[li];
    int64_t B = d->micro_batch, T = d->seq, C = d->hidden, nt = n_tok(g);
    int64_t hd = d->l_heads * d->head_dim;
    double p_attn = train ? g->cfg.attention_dropout : 0.0;

    norm_forward(g, d->sp ? g->norm_local : a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w,
                 w->ln1_b);
    TRY(enter_forward(g, a->ln1, g->norm_local));
    tsr_linear_forward(g->qkv, a->ln1, w->qkv_w, w->qkv_b, nt, C, d->l_qkv_out);
    tsr_qkv_split_forward(a->q, a->k, a->v, g->qkv, nt, d->l_groups, d->heads / d->groups,
                          d->head_dim);
    if (g->cfg.position_embedding_type == TSR_POS_ROPE) {
        rope_apply(g, a->q, d->l_heads);
        rope_apply(g, a->k, d->l_groups);
    }
    tsr_dropout attn_dr = dropout_spec(g, mb, l, DROP_ATTENTION_PROBS, p_attn);
    tsr_attention_forward(a->att, a->lse, a->q, a->k, a->v, B, T, d->l_heads, d->l_groups,
                          d->head_dim, p_attn > 0.0 ? &attn_dr : NULL, g->attn_scratch);
    tsr_linear_forward(g->branch_full, a->att, w->proj_w, row_parallel_bias(g, w->proj_b), nt,
                       hd, C);
    TRY(add_branch(g, mb, a->res1, x, l, DROP_ATTENTION_OUT, train));

    norm_forward(g, d->sp ? g->norm_local : a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, w->ln2_w,
                 w->ln2_b);
    TRY(enter_forward(g, a->ln2, g->norm_local));
    tsr_linear_forward(a->fc1, a->ln2, w->fc1_w, w->fc1_b, nt, C, d->l_fc1_out);
    if (g->cfg.swiglu)
        tsr_swiglu_forward(a->act, a->fc1, nt, d->l_ffn);
    else
        tsr_gelu_forward(a->act, a->fc1, nt * d->l_ffn);
    tsr_linear_forward(g->branch_full, a->act, w->fc2_w, row_parallel_bias(g, w->fc2_b), nt,
                       d->l_ffn, C);
    return add_branch(g, mb, a->res2, a->res1, l, DROP_MLP_OUT, train);
}

static int64_t chunk_base(const tsr_gpt *g, int chunk)
{
    int64_t base = 0;
    for (int c = 0; c < chunk; c++)
        base += g->d.chunk_layers[c];
    return base;
}

static bool chunk_has_embedding(const tsr_gpt *g, int chunk)
{
    return chunk == 0 && g->d.has_embedding;
}

static bool chunk_has_head(const tsr_gpt *g, int chunk)
{
    return chunk == g->d.chunks - 1 && g->d.has_head;
}

static chunk_io *current_io(const tsr_gpt *g, int chunk)
{
    return &g->io[(size_t)g->slot * (size_t)g->d.chunks + (size_t)chunk];
}

void tsr_gpt_select_slot(tsr_gpt *g, int slot)
{
    g->slot = slot;
    g->a = g->acts + (size_t)slot * (size_t)g->d.local_layers;
    g->emb = g->io[(size_t)slot * (size_t)g->d.chunks].x_in;
    if (g->d.has_head) {
        head_slot *h = &g->heads[slot];
        g->lnf_full = h->lnf_full;
        g->lnf_mean = h->lnf_mean;
        g->lnf_rstd = h->lnf_rstd;
        g->d_lnf_full = h->d_lnf_full;
        if (!g->d.sp)
            g->d_lnf_local = h->d_lnf_full;
    }
}

float *tsr_gpt_chunk_output(tsr_gpt *g, int chunk)
{
    int64_t last = chunk_base(g, chunk) + g->d.chunk_layers[chunk] - 1;
    return last >= 0 ? g->a[last].res2 : current_io(g, chunk)->x_in;
}

/* embedding (first chunk of the first stage), the chunk's layers, and the
 * final norm (last chunk of the last stage) */
static tsr_status forward_stack(tsr_gpt *g, const tsr_microbatch *mb, int chunk, bool train)
{
    const tsr_gpt_dims *d = &g->d;
    if (chunk_has_embedding(g, chunk))
        TRY(embed(g, mb, train));
    const float *x = current_io(g, chunk)->x_in;
    int64_t base = chunk_base(g, chunk);
    for (int j = 0; j < d->chunk_layers[chunk]; j++) {
        TRY(forward_layer(g, mb, d->chunk_first_layer[chunk] + j, base + j, x, train));
        x = g->a[base + j].res2;
    }
    if (!chunk_has_head(g, chunk))
        return TSR_OK;
    norm_forward(g, d->sp ? g->norm_local : g->lnf_full, g->lnf_mean, g->lnf_rstd, x, g->lnf_w,
                 g->lnf_b);
    return enter_forward(g, g->lnf_full, g->norm_local);
}

/* forward of every layer of a model without pipeline parallelism */
static tsr_status forward_layers(tsr_gpt *g, const tsr_microbatch *mb, bool train)
{
    return forward_stack(g, mb, 0, train);
}

/* ------------------------------------------------- LM head, cross-entropy */

/* Logits of rows [r0, r0+rows) for this rank's vocabulary rows into
 * g->logits; padded ids get -inf so they never take probability. */
static void head_logits(tsr_gpt *g, int64_t r0, int64_t rows)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t V = d->l_vocab;
    tsr_linear_forward(g->logits, g->lnf_full + r0 * d->hidden, g->head_w, NULL, rows, d->hidden,
                       V);
    int64_t first_pad = d->vocab - d->vocab_start; /* local index of the first padded id */
    if (first_pad < 0)
        first_pad = 0;
    if (first_pad < V)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = first_pad; j < V; j++)
                g->logits[r * V + j] = -INFINITY;
}

/* Loss of rows [r0, r0+rows) (the max, sum-exp and target logit reduced
 * over the vocabulary shards) and, in training, the gradient folded into
 * the head weight and the final-norm output. */
static tsr_status head_chunk(tsr_gpt *g, const tsr_microbatch *mb, int64_t r0, int64_t rows,
                             bool backward)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t V = d->l_vocab;
    head_logits(g, r0, rows);
    tsr_ce_row_max(g->row_max + r0, g->logits, rows, V);
    TRY(tsr_tp_allreduce_max(&g->tp, g->row_max + r0, rows));
    float *pack = g->ce_pack; /* sum-exp and target logit, one reduction */
    tsr_ce_sumexp_target(pack, pack + rows, g->logits, g->row_max + r0, mb->targets + r0, rows,
                         V, d->vocab_start);
    TRY(tsr_tp_allreduce_sum(&g->tp, pack, 2 * rows));
    memcpy(g->sumexp + r0, pack, (size_t)rows * sizeof *pack);
    memcpy(g->target_logit + r0, pack + rows, (size_t)rows * sizeof *pack);
    tsr_ce_loss(g->row_loss + r0, g->sumexp + r0, g->row_max + r0, g->target_logit + r0, rows);
    if (!backward)
        return TSR_OK;
    tsr_ce_logits_to_grad(g->logits, g->row_max + r0, g->sumexp + r0, mb->targets + r0,
                          g->row_dloss + r0, rows, V, d->vocab_start);
    tsr_linear_backward(g->d_lnf_full + r0 * d->hidden, g->g_head_w, NULL, g->logits,
                        g->lnf_full + r0 * d->hidden, g->head_w, rows, d->hidden, V);
    return TSR_OK;
}

static tsr_status head(tsr_gpt *g, const tsr_microbatch *mb, bool backward)
{
    int64_t n = n_tok(g), chunk = g->d.head_chunk_rows;
    if (backward)
        zero(g->d_lnf_full, n * g->d.hidden);
    for (int64_t r0 = 0; r0 < n; r0 += chunk)
        TRY(head_chunk(g, mb, r0, n - r0 < chunk ? n - r0 : chunk, backward));
    return TSR_OK;
}

/* -------------------------------------------------------------- backward */

/* The row-parallel branch's output gradient, whole sequence, after the
 * branch dropout: into g->d_branch_full. */
static tsr_status branch_grad(tsr_gpt *g, const tsr_microbatch *mb, int64_t layer, int site)
{
    const tsr_gpt_dims *d = &g->d;
    const float *grad = g->d_stream;
    if (g->cfg.hidden_dropout > 0.0) {
        tsr_dropout dr = dropout_spec(g, mb, layer, site, g->cfg.hidden_dropout);
        zero(g->d_branch_local, n_loc(g) * d->hidden);
        tsr_dropout_backward(g->d_branch_local, g->d_stream, d->micro_batch, d->l_seq, d->hidden,
                             &dr);
        grad = g->d_branch_local;
    }
    if (d->sp)
        return leave_backward(g, g->d_branch_full, grad);
    if (grad != g->d_branch_full)
        memcpy(g->d_branch_full, grad, (size_t)(n_tok(g) * d->hidden) * sizeof *grad);
    return TSR_OK;
}

static tsr_status backward_layer(tsr_gpt *g, const tsr_microbatch *mb, int64_t l, int64_t li,
                                 const float *x)
{
    const tsr_gpt_dims *d = &g->d;
    const layer_weights *w = &g->w[li];
    layer_weights *gw = &g->g[li];
    layer_acts *a = &g->a[li];
    int64_t B = d->micro_batch, T = d->seq, C = d->hidden, nt = n_tok(g);
    int64_t hd = d->l_heads * d->head_dim, gd = d->l_groups * d->head_dim;
    double p_attn = g->cfg.attention_dropout;

    /* MLP branch: res2 = res1 + dropout(fc2(act(fc1(norm2(res1))))) */
    TRY(branch_grad(g, mb, l, DROP_MLP_OUT));
    zero(g->d_act, nt * d->l_ffn);
    tsr_linear_backward(g->d_act, gw->fc2_w, gw->fc2_b, g->d_branch_full, a->act, w->fc2_w, nt,
                        d->l_ffn, C);
    zero(g->d_fc1, nt * d->l_fc1_out);
    if (g->cfg.swiglu)
        tsr_swiglu_backward(g->d_fc1, g->d_act, a->fc1, nt, d->l_ffn);
    else
        tsr_gelu_backward(g->d_fc1, g->d_act, a->fc1, nt * d->l_ffn);
    zero(g->d_ln_full, nt * C);
    tsr_linear_backward(g->d_ln_full, gw->fc1_w, gw->fc1_b, g->d_fc1, a->ln2, w->fc1_w, nt, C,
                        d->l_fc1_out);
    TRY(enter_backward(g, g->d_ln_local, g->d_ln_full));
    norm_backward(g, g->d_stream, gw->ln2_w, gw->ln2_b, g->d_ln_local, a->res1, w->ln2_w,
                  a->ln2_mean, a->ln2_rstd);

    /* attention branch: res1 = x + dropout(proj(attention(qkv(norm1(x))))) */
    TRY(branch_grad(g, mb, l, DROP_ATTENTION_OUT));
    zero(g->d_att, nt * hd);
    tsr_linear_backward(g->d_att, gw->proj_w, gw->proj_b, g->d_branch_full, a->att, w->proj_w,
                        nt, hd, C);
    zero(g->d_q, nt * hd);
    zero(g->d_k, nt * gd);
    zero(g->d_v, nt * gd);
    tsr_dropout attn_dr = dropout_spec(g, mb, l, DROP_ATTENTION_PROBS, p_attn);
    tsr_attention_backward(g->d_q, g->d_k, g->d_v, g->d_att, a->q, a->k, a->v, a->att, a->lse, B,
                           T, d->l_heads, d->l_groups, d->head_dim,
                           p_attn > 0.0 ? &attn_dr : NULL, g->attn_scratch);
    const float *dq = g->d_q, *dk = g->d_k;
    if (g->cfg.position_embedding_type == TSR_POS_ROPE) {
        zero(g->d_q_pre, nt * hd);
        zero(g->d_k_pre, nt * gd);
        tsr_rope_backward(g->d_q_pre, g->d_q, B, T, d->l_heads, d->head_dim, 0,
                          (float)g->cfg.rotary_base);
        tsr_rope_backward(g->d_k_pre, g->d_k, B, T, d->l_groups, d->head_dim, 0,
                          (float)g->cfg.rotary_base);
        dq = g->d_q_pre;
        dk = g->d_k_pre;
    }
    zero(g->d_qkv, nt * d->l_qkv_out);
    tsr_qkv_split_backward(g->d_qkv, dq, dk, g->d_v, nt, d->l_groups, d->heads / d->groups,
                           d->head_dim);
    zero(g->d_ln_full, nt * C);
    tsr_linear_backward(g->d_ln_full, gw->qkv_w, gw->qkv_b, g->d_qkv, a->ln1, w->qkv_w, nt, C,
                        d->l_qkv_out);
    TRY(enter_backward(g, g->d_ln_local, g->d_ln_full));
    norm_backward(g, g->d_stream, gw->ln1_w, gw->ln1_b, g->d_ln_local, x, w->ln1_w, a->ln1_mean,
                  a->ln1_rstd);
    return TSR_OK;
}

static tsr_status backward_embedding(tsr_gpt *g, const tsr_microbatch *mb)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t C = d->hidden;
    const float *d_emb = g->d_stream;
    if (g->cfg.hidden_dropout > 0.0) {
        tsr_dropout dr = dropout_spec(g, mb, -1, DROP_EMBEDDING, g->cfg.hidden_dropout);
        zero(g->d_branch_local, n_loc(g) * C);
        tsr_dropout_backward(g->d_branch_local, g->d_stream, d->micro_batch, d->l_seq, C, &dr);
        d_emb = g->d_branch_local;
    }
    if (g->g_wpe != NULL)
        tsr_position_add_backward(g->g_wpe, d_emb, d->micro_batch, d->l_seq, C, seq_offset(g));
    if (d->sp) { /* the lookup read every token: its gradient needs them all */
        TRY(leave_backward(g, g->d_branch_full, d_emb));
        d_emb = g->d_branch_full;
    }
    tsr_embedding_backward(g->g_wte, d_emb, mb->tokens, n_tok(g), C, d->vocab_start, d->l_vocab);
    return TSR_OK;
}

/* Tells the trainer (mb->grads_ready) that every gradient from `first`
 * on is final, so data-parallel buckets there can start. Parameters lie in
 * forward order, so after layer l's backward that is everything from its
 * first parameter on; the tied embedding at offset 0 is final only at the
 * end. Under sequence parallelism the norm gradients are partial until
 * finish_grads, so nothing is reported early. */
static void report_grads_ready(const tsr_gpt *g, const tsr_microbatch *mb, const float *first)
{
    if (mb->grads_ready != NULL && !g->d.sp && g->d.pp == 1)
        mb->grads_ready(mb->grads_ready_ctx, (size_t)(first - g->grads));
}

/* Backward of a chunk: from the head's gradient (last chunk of the last
 * stage) or the gradient received for its output, down to the embedding
 * (first chunk of the first stage) or the gradient of its input, kept in
 * the slot for sending. */
static tsr_status backward_stack(tsr_gpt *g, const tsr_microbatch *mb, int chunk)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t base = chunk_base(g, chunk), n = d->chunk_layers[chunk];
    chunk_io *io = current_io(g, chunk);
    if (chunk_has_head(g, chunk)) {
        const float *last = n > 0 ? g->a[base + n - 1].res2 : io->x_in;
        TRY(enter_backward(g, g->d_lnf_local, g->d_lnf_full));
        zero(g->d_stream, n_loc(g) * d->hidden);
        norm_backward(g, g->d_stream, g->g_lnf_w, g->g_lnf_b, g->d_lnf_local, last, g->lnf_w,
                      g->lnf_mean, g->lnf_rstd);
        report_grads_ready(g, mb, g->g_lnf_w);
    } else {
        memcpy(g->d_stream, io->d_recv, (size_t)(n_loc(g) * d->hidden) * sizeof(float));
    }
    for (int64_t j = n - 1; j >= 0; j--) {
        int first = 0, count = 0;
        if (tsr_gpt_recomputed(g, (int)j, (int)n, &first, &count) && j == first + count - 1) {
            /* forward of the group again, from its saved input: the same
             * kernels, inputs and dropout keys give the same activations */
            for (int k = first; k < first + count; k++)
                TRY(forward_layer(g, mb, d->chunk_first_layer[chunk] + k, base + k,
                                  k > 0 ? g->a[base + k - 1].res2 : io->x_in, true));
        }
        TRY(backward_layer(g, mb, d->chunk_first_layer[chunk] + j, base + j,
                           j > 0 ? g->a[base + j - 1].res2 : io->x_in));
        report_grads_ready(g, mb, g->g[base + j].ln1_w);
    }
    if (chunk_has_embedding(g, chunk))
        return backward_embedding(g, mb);
    memcpy(io->d_send, g->d_stream, (size_t)(n_loc(g) * d->hidden) * sizeof(float));
    return TSR_OK;
}

static tsr_status backward_layers(tsr_gpt *g, const tsr_microbatch *mb)
{
    return backward_stack(g, mb, 0);
}

/* Under sequence parallelism each rank saw only its rows in the norms and
 * the position embedding: their gradients are partial sums until reduced
 * over the tensor-parallel group, once per iteration. */
static tsr_status gpt_finish_grads(void *self)
{
    tsr_gpt *g = self;
    for (size_t i = 0; g->d.sp && i < g->param_count_entries; i++) {
        const tsr_gpt_param *p = &g->table[i];
        if (p->local && p->split == TSR_SPLIT_NONE && strstr(p->name, "linear_") == NULL)
            TRY(tsr_tp_allreduce_sum(&g->tp, g->grads + p->offset, p->rows * p->cols));
    }
    /* a tied embedding lives on the first and the last stage: both copies
     * take the sum of their gradients, so they stay equal (Megatron's
     * embedding group) */
    if (g->d.pp > 1 && !g->cfg.untie_embeddings_and_output_weights &&
        (g->d.has_embedding || g->d.has_head)) {
        tsr_comm *group = tsr_grid_comm(g->tp.grid, TSR_GROUP_EMBEDDING);
        size_t n = (size_t)(g->d.l_vocab * g->d.hidden);
        TRY(tsr_comm_allreduce(g->g_wte, g->g_wte, n, TSR_COMM_FP32, TSR_COMM_SUM, group, NULL));
    }
    return TSR_OK;
}

/* ------------------------------------------------------------ interfaces */

static tsr_status check_tokens(const tsr_gpt *g, const int32_t *tokens, const int32_t *targets)
{
    int64_t n = n_tok(g), vocab = g->d.vocab;
    for (int64_t r = 0; r < n; r++) {
        int32_t bad;
        if (tokens[r] < 0 || tokens[r] >= vocab)
            bad = tokens[r];
        else if (targets != NULL && (targets[r] < 0 || targets[r] >= vocab))
            bad = targets[r];
        else
            continue;
        return tsr_error_set(TSR_ERR_FORMAT,
                                 "token id %d at position %lld is outside the vocabulary of "
                                 "%lld; the dataset and --vocab-size disagree",
                                 (int)bad, (long long)r, (long long)g->d.vocab);
    }
    return TSR_OK;
}

static double masked_mean_loss(const tsr_gpt *g, const float *mask)
{
    double sum = 0.0, count = 0.0;
    for (int64_t r = 0; r < n_tok(g); r++) {
        sum += (double)mask[r] * (double)g->row_loss[r];
        count += mask[r];
    }
    return count > 0.0 ? sum / count : 0.0;
}

static tsr_status gpt_train_microbatch(void *self, const tsr_microbatch *mb, float loss_scale,
                                       double *loss)
{
    tsr_gpt *g = self;
    TRY(check_tokens(g, mb->tokens, mb->targets));
    tsr_gpt_set_loss_weights(g, mb, loss_scale);
    TRY(forward_layers(g, mb, true));
    TRY(head(g, mb, true));
    *loss = masked_mean_loss(g, mb->mask);
    return backward_layers(g, mb);
}

tsr_status tsr_gpt_forward_chunk(tsr_gpt *g, const tsr_microbatch *mb, int chunk, bool train,
                                 double *loss)
{
    if (chunk_has_embedding(g, chunk) || chunk_has_head(g, chunk))
        TRY(check_tokens(g, mb->tokens, mb->targets));
    TRY(forward_stack(g, mb, chunk, train));
    if (!chunk_has_head(g, chunk))
        return TSR_OK;
    TRY(head(g, mb, train));
    if (loss != NULL)
        *loss = masked_mean_loss(g, mb->mask);
    return TSR_OK;
}

tsr_status tsr_gpt_backward_chunk(tsr_gpt *g, const tsr_microbatch *mb, int chunk)
{
    return backward_stack(g, mb, chunk);
}

/* Per-token loss weights of a training micro batch: its mask over its
 * masked-token count, times the caller's scale (1 / micro batches). */
void tsr_gpt_set_loss_weights(tsr_gpt *g, const tsr_microbatch *mb, float loss_scale)
{
    int64_t n = n_tok(g);
    double tokens = 0.0;
    for (int64_t r = 0; r < n; r++)
        tokens += mb->mask[r];
    float per_token = tokens > 0.0 ? loss_scale / (float)tokens : 0.0f;
    for (int64_t r = 0; r < n; r++)
        g->row_dloss[r] = mb->mask[r] * per_token;
}

/* argmax == target, loss sum and token count of the current slot's head */
static void eval_counts(const tsr_gpt *g, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    memset(out, 0, sizeof *out);
    for (int64_t r = 0; r < n_tok(g); r++) {
        float m = mb->mask[r];
        if (m == 0.0f)
            continue;
        /* the target is the argmax when its logit is the row's maximum;
         * both are already reduced over the vocabulary shards */
        out->correct += m * (g->target_logit[r] >= g->row_max[r]);
        out->loss_sum += m * g->row_loss[r];
        out->tokens += m;
    }
}

tsr_status tsr_gpt_eval_head_counts(tsr_gpt *g, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    eval_counts(g, mb, out);
    return TSR_OK;
}

static tsr_status gpt_eval_microbatch(void *self, const tsr_microbatch *mb, tsr_eval_counts *out)
{
    tsr_gpt *g = self;
    if (g->d.pp > 1)
        return tsr_gpt_pipeline_eval(g, mb, out);
    TRY(check_tokens(g, mb->tokens, mb->targets));
    TRY(forward_layers(g, mb, false));
    TRY(head(g, mb, false));
    eval_counts(g, mb, out);
    return TSR_OK;
}

static tsr_status gpt_train_iteration(void *self, const tsr_microbatch_source *src, int count,
                                      float loss_scale, double *loss_sum)
{
    return tsr_gpt_pipeline_iteration(self, src, count, loss_scale, loss_sum);
}

tsr_status tsr_gpt_logits(tsr_gpt *g, const int32_t *tokens, float *logits, int64_t *count)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t n = n_tok(g), V = d->l_vocab, chunk = d->head_chunk_rows;
    int64_t real = d->vocab - d->vocab_start;
    real = real < 0 ? 0 : real > V ? V : real;
    *count = real;
    TRY(check_tokens(g, tokens, NULL));
    tsr_microbatch mb = {tokens, NULL, NULL, 0, 0, NULL, NULL};
    TRY(forward_layers(g, &mb, false));
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t rows = n - r0 < chunk ? n - r0 : chunk;
        head_logits(g, r0, rows);
        for (int64_t r = 0; r < rows; r++)
            memcpy(logits + (r0 + r) * real, g->logits + r * V, (size_t)real * sizeof *logits);
    }
    return TSR_OK;
}

tsr_model tsr_gpt_as_model(tsr_gpt *g)
{
    tsr_model m;
    memset(&m, 0, sizeof m);
    m.self = g;
    m.params = g->params;
    m.grads = g->grads;
    m.param_count = g->numel;
    m.spans = g->spans;
    m.span_count = g->span_count;
    m.tensors = g->tensors;
    m.tensor_count = g->tensor_count;
    m.train_microbatch = gpt_train_microbatch;
    m.eval_microbatch = gpt_eval_microbatch;
    m.finish_grads = gpt_finish_grads;
    m.train_iteration = g->d.pp > 1 ? gpt_train_iteration : NULL;
    return m;
}
