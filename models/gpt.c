/*
 * gpt.c - forward and backward of the GPT / LLaMA-style decoder on one rank.
 *
 * Activations that backward needs are kept per layer; everything else
 * (qkv before the split, branch outputs, every activation gradient) lives
 * in one shared set of buffers reused layer after layer. The LM head and
 * the cross-entropy are fused: logits exist only for head_chunk_rows rows
 * at a time, are turned into their gradient in place and immediately
 * folded into the output-layer and final-norm gradients, so neither the
 * full logits nor the probabilities are ever stored.
 *
 * Padded vocabulary rows get -inf logits: they never take probability
 * mass, so the loss does not depend on how much padding a layout needs.
 */
#include "gpt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/kernels.h"
#include "tessera/rng.h"

/* ---------------------------------------------------------------- memory */

static size_t activation_floats_per_layer(const tsr_gpt_dims *d)
{
    size_t n = (size_t)(d->micro_batch * d->seq);
    size_t per_token = (size_t)(d->hidden      /* ln1 */
                                + 2            /* ln1 mean, rstd */
                                + d->heads * d->head_dim + 2 * d->groups * d->head_dim /* q k v */
                                + d->heads * d->head_dim /* att */
                                + d->heads     /* lse */
                                + d->hidden    /* res1 */
                                + d->hidden + 2 /* ln2 */
                                + d->fc1_out + d->ffn /* fc1, act */
                                + d->hidden);  /* res2 */
    return n * per_token + 16 * 16; /* alignment slack of 16 buffers */
}

static size_t scratch_floats(const tsr_gpt_dims *d)
{
    size_t n = (size_t)(d->micro_batch * d->seq);
    size_t hd = (size_t)(d->heads * d->head_dim), gd = (size_t)(d->groups * d->head_dim);
    size_t per_token = (size_t)d->qkv_out + (size_t)d->hidden /* qkv, branch */
                       + 3 * (size_t)d->hidden                 /* d_stream, d_branch, d_ln */
                       + hd + hd + gd + gd + hd + gd           /* d_att d_q d_k d_v d_q_pre d_k_pre */
                       + (size_t)d->qkv_out + (size_t)d->fc1_out + (size_t)d->ffn /* d_qkv d_fc1 d_act */
                       + (size_t)d->hidden + 5;                /* d_lnf, 5 per-row loss terms */
    size_t head = (size_t)d->head_chunk_rows * (size_t)d->padded_vocab;
    return n * per_token + head +
           tsr_attention_scratch_floats(d->seq, d->head_dim) + 32 * 16;
}

void tsr_gpt_plan(const tsr_config *cfg, const tsr_gpt_dims *d, tsr_memory_plan *plan)
{
    size_t count = tsr_gpt_param_table(d, cfg, NULL, 0);
    tsr_gpt_param last;
    tsr_gpt_param *table = malloc(count * sizeof *table);
    size_t numel = 0;
    if (table != NULL) {
        tsr_gpt_param_table(d, cfg, table, count);
        last = table[count - 1];
        numel = last.offset + ((size_t)(last.rows * last.cols) + 15) / 16 * 16;
        free(table);
    }
    size_t n = (size_t)(d->micro_batch * d->seq);
    tsr_plan_add_floats(plan, TSR_MEM_PARAMS, numel);
    tsr_plan_add_floats(plan, TSR_MEM_GRADS, numel);
    tsr_plan_add_floats(plan, TSR_MEM_ACTIVATIONS,
                        (size_t)d->layers * activation_floats_per_layer(d) +
                            n * (size_t)(2 * d->hidden + 2) + 64);
    tsr_plan_add_floats(plan, TSR_MEM_SCRATCH, scratch_floats(d));
    tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH,
                       count * (sizeof(tsr_gpt_param) + sizeof(tsr_param_span) + sizeof(tsr_tensor_desc)) +
                           (size_t)d->layers * (2 * sizeof(layer_weights) + sizeof(layer_acts)) +
                           sizeof(tsr_gpt) + 1024);
}

/* ------------------------------------------------------------- creation */

static float *param_ptr(tsr_gpt *g, float *base, const char *name)
{
    for (size_t i = 0; i < g->param_count_entries; i++)
        if (strcmp(g->table[i].name, name) == 0)
            return base + g->table[i].offset;
    return NULL;
}

static void bind_weights(tsr_gpt *g, float *base, layer_weights *lw, float **wte, float **wpe,
                         float **lnf_w, float **lnf_b, float **head)
{
    char name[128];
    *wte = param_ptr(g, base, "embedding.word_embeddings.weight");
    *wpe = param_ptr(g, base, "embedding.position_embeddings.weight");
    *lnf_w = param_ptr(g, base, "decoder.final_layernorm.weight");
    *lnf_b = param_ptr(g, base, "decoder.final_layernorm.bias");
    *head = param_ptr(g, base, "output_layer.weight");
    if (*head == NULL)
        *head = *wte; /* tied */
    for (int64_t l = 0; l < g->d.layers; l++) {
#define P(suffix) (snprintf(name, sizeof name, "decoder.layers.%lld.%s", (long long)l, suffix), param_ptr(g, base, name))
        lw[l].ln1_w = P("input_layernorm.weight");
        lw[l].ln1_b = P("input_layernorm.bias");
        lw[l].qkv_w = P("self_attention.linear_qkv.weight");
        lw[l].qkv_b = P("self_attention.linear_qkv.bias");
        lw[l].proj_w = P("self_attention.linear_proj.weight");
        lw[l].proj_b = P("self_attention.linear_proj.bias");
        lw[l].ln2_w = P("pre_mlp_layernorm.weight");
        lw[l].ln2_b = P("pre_mlp_layernorm.bias");
        lw[l].fc1_w = P("mlp.linear_fc1.weight");
        lw[l].fc1_b = P("mlp.linear_fc1.bias");
        lw[l].fc2_w = P("mlp.linear_fc2.weight");
        lw[l].fc2_b = P("mlp.linear_fc2.bias");
#undef P
    }
}

static void init_params(tsr_gpt *g)
{
    uint64_t seed = (uint64_t)g->cfg.seed;
    for (size_t i = 0; i < g->param_count_entries; i++) {
        const tsr_gpt_param *p = &g->table[i];
        float *data = g->params + p->offset;
        int64_t n = p->rows * p->cols;
        if (p->init_std > 0.0f) {
            tsr_rng_fill_normal(data, n, tsr_rng_key(seed, p->name), 0, 0.0f, p->init_std);
        } else {
            for (int64_t j = 0; j < n; j++)
                data[j] = p->init_value;
        }
    }
}

#define TAKE(cat, ptr, floats)                                                                \
    do {                                                                                     \
        st = tsr_plan_take_floats(plan, cat, (size_t)(floats), &(ptr));                      \
        if (st != TSR_OK)                                                                    \
            return st;                                                                       \
    } while (0)

static tsr_status carve_activations(tsr_gpt *g, tsr_memory_plan *plan)
{
    tsr_status st;
    const tsr_gpt_dims *d = &g->d;
    int64_t n = d->micro_batch * d->seq;
    int64_t hd = d->heads * d->head_dim, gd = d->groups * d->head_dim;
    for (int64_t l = 0; l < d->layers; l++) {
        layer_acts *a = &g->a[l];
        TAKE(TSR_MEM_ACTIVATIONS, a->ln1, n * d->hidden);
        TAKE(TSR_MEM_ACTIVATIONS, a->ln1_mean, n);
        TAKE(TSR_MEM_ACTIVATIONS, a->ln1_rstd, n);
        TAKE(TSR_MEM_ACTIVATIONS, a->q, n * hd);
        TAKE(TSR_MEM_ACTIVATIONS, a->k, n * gd);
        TAKE(TSR_MEM_ACTIVATIONS, a->v, n * gd);
        TAKE(TSR_MEM_ACTIVATIONS, a->att, n * hd);
        TAKE(TSR_MEM_ACTIVATIONS, a->lse, n * d->heads);
        TAKE(TSR_MEM_ACTIVATIONS, a->res1, n * d->hidden);
        TAKE(TSR_MEM_ACTIVATIONS, a->ln2, n * d->hidden);
        TAKE(TSR_MEM_ACTIVATIONS, a->ln2_mean, n);
        TAKE(TSR_MEM_ACTIVATIONS, a->ln2_rstd, n);
        TAKE(TSR_MEM_ACTIVATIONS, a->fc1, n * d->fc1_out);
        TAKE(TSR_MEM_ACTIVATIONS, a->act, n * d->ffn);
        TAKE(TSR_MEM_ACTIVATIONS, a->res2, n * d->hidden);
    }
    TAKE(TSR_MEM_ACTIVATIONS, g->emb, n * d->hidden);
    TAKE(TSR_MEM_ACTIVATIONS, g->lnf, n * d->hidden);
    TAKE(TSR_MEM_ACTIVATIONS, g->lnf_mean, n);
    TAKE(TSR_MEM_ACTIVATIONS, g->lnf_rstd, n);

    TAKE(TSR_MEM_SCRATCH, g->qkv, n * d->qkv_out);
    TAKE(TSR_MEM_SCRATCH, g->branch, n * d->hidden);
    TAKE(TSR_MEM_SCRATCH, g->d_stream, n * d->hidden);
    TAKE(TSR_MEM_SCRATCH, g->d_branch, n * d->hidden);
    TAKE(TSR_MEM_SCRATCH, g->d_ln, n * d->hidden);
    TAKE(TSR_MEM_SCRATCH, g->d_att, n * hd);
    TAKE(TSR_MEM_SCRATCH, g->d_q, n * hd);
    TAKE(TSR_MEM_SCRATCH, g->d_k, n * gd);
    TAKE(TSR_MEM_SCRATCH, g->d_v, n * gd);
    TAKE(TSR_MEM_SCRATCH, g->d_q_pre, n * hd);
    TAKE(TSR_MEM_SCRATCH, g->d_k_pre, n * gd);
    TAKE(TSR_MEM_SCRATCH, g->d_qkv, n * d->qkv_out);
    TAKE(TSR_MEM_SCRATCH, g->d_fc1, n * d->fc1_out);
    TAKE(TSR_MEM_SCRATCH, g->d_act, n * d->ffn);
    TAKE(TSR_MEM_SCRATCH, g->d_lnf, n * d->hidden);
    TAKE(TSR_MEM_SCRATCH, g->logits, d->head_chunk_rows * d->padded_vocab);
    TAKE(TSR_MEM_SCRATCH, g->row_max, n);
    TAKE(TSR_MEM_SCRATCH, g->sumexp, n);
    TAKE(TSR_MEM_SCRATCH, g->target_logit, n);
    TAKE(TSR_MEM_SCRATCH, g->row_loss, n);
    TAKE(TSR_MEM_SCRATCH, g->row_dloss, n);
    TAKE(TSR_MEM_SCRATCH, g->attn_scratch, tsr_attention_scratch_floats(d->seq, d->head_dim));
    return TSR_OK;
}

static tsr_status build_spans(tsr_gpt *g)
{
    /* merge neighbouring parameters with the same decay flag */
    size_t count = 0;
    for (size_t i = 0; i < g->param_count_entries; i++) {
        const tsr_gpt_param *p = &g->table[i];
        size_t end = i + 1 < g->param_count_entries ? g->table[i + 1].offset : g->numel;
        if (count > 0 && g->spans[count - 1].decay == p->decay) {
            g->spans[count - 1].count = end - g->spans[count - 1].offset;
        } else {
            g->spans[count].offset = p->offset;
            g->spans[count].count = end - p->offset;
            g->spans[count].decay = p->decay;
            count++;
        }
    }
    g->span_count = count;
    return TSR_OK;
}

/* One rank holds every parameter whole and writes it. Vocabulary-sized
 * tensors are described at the real vocabulary: the padding depends on the
 * tensor-parallel size, so a checkpoint must not hold it. */
static void describe_tensors(tsr_gpt *g)
{
    for (size_t i = 0; i < g->param_count_entries; i++) {
        const tsr_gpt_param *p = &g->table[i];
        int64_t rows = p->rows == g->d.padded_vocab && p->cols == g->d.hidden &&
                               (strcmp(p->name, "embedding.word_embeddings.weight") == 0 ||
                                strcmp(p->name, "output_layer.weight") == 0)
                           ? g->d.vocab
                           : p->rows;
        g->tensors[i] = (tsr_tensor_desc){p->name, rows, p->cols, 0, rows, 0, p->cols,
                                          p->offset, true};
    }
}

tsr_status tsr_gpt_create(const tsr_config *cfg, const tsr_gpt_dims *dims, tsr_memory_plan *plan,
                          tsr_gpt **out)
{
    tsr_status st;
    *out = NULL;
    tsr_gpt *g = NULL;
    st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, sizeof *g, (void **)&g);
    if (st != TSR_OK)
        return st;
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    g->d = *dims;
    size_t count = tsr_gpt_param_table(dims, cfg, NULL, 0);
    st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, count * sizeof *g->table, (void **)&g->table);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, count * sizeof *g->spans,
                                 (void **)&g->spans);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, count * sizeof *g->tensors,
                                 (void **)&g->tensors);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (size_t)dims->layers * sizeof *g->w,
                                 (void **)&g->w);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (size_t)dims->layers * sizeof *g->g,
                                 (void **)&g->g);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (size_t)dims->layers * sizeof *g->a,
                                 (void **)&g->a);
    if (st != TSR_OK)
        return st;
    g->param_count_entries = tsr_gpt_param_table(dims, cfg, g->table, count);
    const tsr_gpt_param *last = &g->table[count - 1];
    g->numel = last->offset + ((size_t)(last->rows * last->cols) + 15) / 16 * 16;
    TAKE(TSR_MEM_PARAMS, g->params, g->numel);
    TAKE(TSR_MEM_GRADS, g->grads, g->numel);
    bind_weights(g, g->params, g->w, &g->wte, &g->wpe, &g->lnf_w, &g->lnf_b, &g->head_w);
    bind_weights(g, g->grads, g->g, &g->g_wte, &g->g_wpe, &g->g_lnf_w, &g->g_lnf_b,
                 &g->g_head_w);
    st = carve_activations(g, plan);
    if (st != TSR_OK)
        return st;
    build_spans(g);
    describe_tensors(g);
    init_params(g);
    *out = g;
    return TSR_OK;
}

void tsr_gpt_destroy(tsr_gpt *gpt)
{
    (void)gpt; /* everything lives in the plan's arenas */
}

const tsr_gpt_param *tsr_gpt_params(const tsr_gpt *gpt, size_t *count)
{
    *count = gpt->param_count_entries;
    return gpt->table;
}

float *tsr_gpt_param_data(tsr_gpt *gpt)
{
    return gpt->params;
}

float *tsr_gpt_grad_data(tsr_gpt *gpt)
{
    return gpt->grads;
}
