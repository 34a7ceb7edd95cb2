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

static int64_t rows_full(const tsr_gpt_dims *d)
{
    return d->micro_batch * d->seq;
}

static int64_t rows_local(const tsr_gpt_dims *d)
{
    return d->micro_batch * d->l_seq;
}

/* Layers per recompute group: --recompute-num-layers under the uniform
 * method, 1 under block (each of the first N layers of a chunk alone). */
static int recompute_group_size(const tsr_config *cfg)
{
    if (cfg->recompute_granularity != TSR_RECOMPUTE_FULL)
        return 0;
    return cfg->recompute_method == TSR_RECOMPUTE_UNIFORM ? cfg->recompute_num_layers : 1;
}

bool tsr_gpt_recomputed(const tsr_gpt *g, int j, int n, int *first, int *count)
{
    const tsr_config *cfg = &g->cfg;
    if (g->recompute_group == 0)
        return false;
    if (cfg->recompute_method == TSR_RECOMPUTE_BLOCK) {
        *first = j;
        *count = 1;
        return j < cfg->recompute_num_layers;
    }
    int size = g->recompute_group;
    *first = j / size * size;
    *count = *first + size <= n ? size : n - *first;
    return true;
}

/* Local layers whose activations are recomputed in backward (of all
 * chunks): they keep only their output per micro batch in flight. */
static int64_t recomputed_layers(const tsr_config *cfg, const tsr_gpt_dims *d)
{
    if (cfg->recompute_granularity != TSR_RECOMPUTE_FULL)
        return 0;
    if (cfg->recompute_method == TSR_RECOMPUTE_UNIFORM)
        return d->local_layers;
    int64_t count = 0;
    for (int c = 0; c < d->chunks; c++)
        count += d->chunk_layers[c] < cfg->recompute_num_layers ? d->chunk_layers[c]
                                                                 : cfg->recompute_num_layers;
    return count;
}

static size_t activation_floats_per_layer(const tsr_gpt_dims *d)
{
    size_t nt = (size_t)rows_full(d), nl = (size_t)rows_local(d);
    size_t hd = (size_t)(d->l_heads * d->head_dim), gd = (size_t)(d->l_groups * d->head_dim);
    size_t full = (size_t)d->hidden + hd + 2 * gd + hd + (size_t)d->l_heads + (size_t)d->hidden +
                  (size_t)(d->l_fc1_out + d->l_ffn); /* ln1 q k v att lse ln2 fc1 act */
    size_t local = 2 * (size_t)d->hidden + 4;         /* res1 res2, norm statistics */
    return nt * full + nl * local + 15 * 16;          /* alignment of 15 buffers */
}

static size_t scratch_floats(const tsr_gpt_dims *d)
{
    size_t nt = (size_t)rows_full(d), nl = (size_t)rows_local(d), c = (size_t)d->hidden;
    size_t hd = (size_t)(d->l_heads * d->head_dim), gd = (size_t)(d->l_groups * d->head_dim);
    size_t full = c + c + (size_t)d->l_qkv_out + c /* emb_full, tp scratch, qkv, branch */
                  + c + c                           /* d_branch_full, d_ln_full */
                  + hd + hd + gd + gd + hd + gd     /* d_att d_q d_k d_v d_q_pre d_k_pre */
                  + (size_t)(d->l_qkv_out + d->l_fc1_out + d->l_ffn) /* d_qkv d_fc1 d_act */
                  + 8;                              /* per-row loss terms */
    size_t local = 6 * c; /* norm_local branch_local d_stream d_branch_local d_ln_local d_lnf_local */
    size_t head = (size_t)d->head_chunk_rows * (size_t)d->l_vocab;
    return nt * full + nl * local + head +
           tsr_attention_scratch_floats(d->seq, d->head_dim) + 40 * 16;
}

static size_t param_floats(const tsr_gpt_param *table, size_t count)
{
    size_t end = 0;
    for (size_t i = 0; i < count; i++)
        if (table[i].local) {
            size_t e = table[i].offset +
                       ((size_t)(table[i].local_rows * table[i].local_cols) + 15) / 16 * 16;
            end = e > end ? e : end;
        }
    return end;
}

static size_t schedule_length(const tsr_gpt_dims *d)
{
    if (d->pp <= 1)
        return 0;
    tsr_pp_schedule_spec spec = {d->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                               : TSR_PP_SCHEDULE_1F1B,
                                 d->pp, d->pp_rank, d->microbatches, d->chunks};
    size_t count = 0;
    return tsr_pp_schedule_count(&spec, &count) == TSR_OK ? count : 0;
}

void tsr_gpt_plan(const tsr_config *cfg, const tsr_gpt_dims *d, tsr_memory_plan *plan)
{
    size_t count = tsr_gpt_param_table(d, cfg, NULL, 0);
    size_t numel = 0;
    tsr_gpt_param *table = malloc(count * sizeof *table);
    if (table != NULL) {
        tsr_gpt_param_table(d, cfg, table, count);
        numel = param_floats(table, count);
        free(table);
    }
    size_t nl = (size_t)rows_local(d), nt = (size_t)rows_full(d), c = (size_t)d->hidden;
    size_t slots = (size_t)d->slots, chunks = (size_t)d->chunks;
    tsr_plan_add_floats(plan, TSR_MEM_PARAMS, numel);
    tsr_plan_add_floats(plan, TSR_MEM_GRADS, numel);
    /* every micro batch in flight keeps its layers' activations, its chunk
     * inputs and (last stage) its final-norm output and head gradient */
    /* a recomputed layer keeps only its output (the next layer's input);
     * one group's worth of full activations is shared by all of them */
    size_t recomputed = (size_t)recomputed_layers(cfg, d);
    size_t per_slot = ((size_t)d->local_layers - recomputed) * activation_floats_per_layer(d) +
                      recomputed * (nl * c + 16) + chunks * (nl * c + 16) +
                      (d->has_head ? nt * c * 2 + nl * 2 + 64 : 0);
    if (recomputed > 0)
        tsr_plan_add_floats(plan, TSR_MEM_ACTIVATIONS,
                            (size_t)recompute_group_size(cfg) * activation_floats_per_layer(d));
    size_t pipeline = d->pp > 1 ? chunks * 2 * (nl * c + 16) : 0; /* d_recv, d_send */
    if (d->pp > 1) { /* the iteration's micro batches, read up front */
        size_t m = (size_t)d->microbatches;
        tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH, m * (nt + 1) * sizeof(int32_t));
        tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH, m * nt * sizeof(int32_t));
        tsr_plan_add_floats(plan, TSR_MEM_SCRATCH, m * nt);
        tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH, m * sizeof(tsr_microbatch));
    }
    tsr_plan_add_floats(plan, TSR_MEM_ACTIVATIONS, slots * (per_slot + pipeline));
    tsr_plan_add_floats(plan, TSR_MEM_SCRATCH, scratch_floats(d));
    tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH,
                       sizeof(tsr_gpt) +
                           count * (sizeof(tsr_gpt_param) + sizeof(tsr_param_span) +
                                    2 * sizeof(tsr_tensor_desc)) +
                           (size_t)d->local_layers *
                               (2 * sizeof(layer_weights) + slots * sizeof(layer_acts)) +
                           slots * (chunks * sizeof(chunk_io) + sizeof(head_slot)) +
                           (size_t)recompute_group_size(cfg) * sizeof(layer_acts) +
                           schedule_length(d) * sizeof(tsr_pp_action) + 2048);
}

/* ------------------------------------------------------------- creation */

static float *param_ptr(tsr_gpt *g, float *base, const char *name)
{
    for (size_t i = 0; i < g->param_count_entries; i++)
        if (g->table[i].local && strcmp(g->table[i].name, name) == 0)
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
    int64_t local = 0;
    for (int c = 0; c < g->d.chunks; c++) {
        for (int j = 0; j < g->d.chunk_layers[c]; j++, local++) {
            int64_t layer = g->d.chunk_first_layer[c] + j;
            layer_weights *lwl = &lw[local];
#define P(suffix) (snprintf(name, sizeof name, "decoder.layers.%lld.%s", (long long)layer, suffix), param_ptr(g, base, name))
            lwl->ln1_w = P("input_layernorm.weight");
            lwl->ln1_b = P("input_layernorm.bias");
            lwl->qkv_w = P("self_attention.linear_qkv.weight");
            lwl->qkv_b = P("self_attention.linear_qkv.bias");
            lwl->proj_w = P("self_attention.linear_proj.weight");
            lwl->proj_b = P("self_attention.linear_proj.bias");
            lwl->ln2_w = P("pre_mlp_layernorm.weight");
            lwl->ln2_b = P("pre_mlp_layernorm.bias");
            lwl->fc1_w = P("mlp.linear_fc1.weight");
            lwl->fc1_b = P("mlp.linear_fc1.bias");
            lwl->fc2_w = P("mlp.linear_fc2.weight");
            lwl->fc2_b = P("mlp.linear_fc2.bias");
#undef P
        }
    }
}

static bool is_vocab_tensor(const tsr_gpt_param *p)
{
    return strcmp(p->name, "embedding.word_embeddings.weight") == 0 ||
           strcmp(p->name, "output_layer.weight") == 0;
}

/* Adds the blocks of parameter p this rank holds. Vocabulary tensors are
 * described at the real vocabulary: the padding depends on the
 * tensor-parallel size, so a checkpoint must not hold it. Replicated
 * parameters are written by tensor-parallel rank 0 only. */
static void describe_param(tsr_gpt *g, const tsr_gpt_param *p)
{
    const tsr_gpt_dims *d = &g->d;
    int64_t rows = is_vocab_tensor(p) ? d->vocab : p->rows;
    tsr_tensor_desc *t = &g->tensors[g->tensor_count];
    *t = (tsr_tensor_desc){p->name, rows, p->cols, 0, p->rows, 0, p->cols, p->offset, true};
    if (!p->local) {
        /* another stage's: described all the same (with as many blocks as
         * its holder), so every rank walks the same list of names, which
         * checkpoints create collectively */
        *t = (tsr_tensor_desc){p->name, rows, p->cols, 0, 0, 0, 0, 0, false};
        g->tensor_count++;
        if (p->split == TSR_SPLIT_GATE_UP)
            g->tensors[g->tensor_count++] = *t;
        return;
    }
    /* the last stage's copy of a tied embedding is written by the first */
    bool copy = strcmp(p->name, "embedding.word_embeddings.weight") == 0 && !d->has_embedding;
    switch (p->split) {
    case TSR_SPLIT_NONE:
        t->row_count = rows;
        t->writer = d->tp_rank == 0;
        break;
    case TSR_SPLIT_ROWS: {
        int64_t start = (int64_t)d->tp_rank * p->local_rows;
        int64_t end = start + p->local_rows < rows ? start + p->local_rows : rows;
        t->row_start = start;
        t->row_count = end > start ? end - start : 0;
        break;
    }
    case TSR_SPLIT_COLS:
        t->col_start = (int64_t)d->tp_rank * p->local_cols;
        t->col_count = p->local_cols;
        break;
    case TSR_SPLIT_GATE_UP: {
        int64_t half = p->local_rows / 2, total_half = p->rows / 2;
        t->row_start = (int64_t)d->tp_rank * half;
        t->row_count = half;
        tsr_tensor_desc *up = &g->tensors[++g->tensor_count];
        *up = *t;
        up->row_start = total_half + (int64_t)d->tp_rank * half;
        up->offset = p->offset + (size_t)(half * p->cols);
        break;
    }
    }
    if (copy)
        t->writer = false;
    g->tensor_count++;
}

/* Every element from the RNG keyed by (seed, name, global element index):
 * the same value whichever rank holds it. Padded vocabulary rows are
 * initialised too (they are never used). */
static void init_params(tsr_gpt *g)
{
    uint64_t seed = (uint64_t)g->cfg.seed;
    const tsr_gpt_dims *d = &g->d;
    for (size_t i = 0; i < g->param_count_entries; i++) {
        const tsr_gpt_param *p = &g->table[i];
        if (!p->local)
            continue;
        float *data = g->params + p->offset;
        uint64_t key = tsr_rng_key(seed, p->name);
        int64_t blocks = p->split == TSR_SPLIT_GATE_UP ? 2 : 1;
        int64_t block_rows = p->local_rows / blocks;
        for (int64_t blk = 0; blk < blocks; blk++) {
            int64_t row0 = 0, col0 = 0;
            if (p->split == TSR_SPLIT_ROWS || p->split == TSR_SPLIT_GATE_UP)
                row0 = blk * (p->rows / 2) + (int64_t)d->tp_rank * block_rows;
            if (p->split == TSR_SPLIT_COLS)
                col0 = (int64_t)d->tp_rank * p->local_cols;
            for (int64_t r = 0; r < block_rows; r++) {
                float *row = data + (blk * block_rows + r) * p->local_cols;
                uint64_t first = (uint64_t)((row0 + r) * p->cols + col0);
                if (p->init_std > 0.0f)
                    tsr_rng_fill_normal(row, p->local_cols, key, first, 0.0f, p->init_std);
                else
                    for (int64_t c = 0; c < p->local_cols; c++)
                        row[c] = p->init_value;
            }
        }
    }
}

#define TAKE(cat, ptr, floats)                                                                \
    do {                                                                                     \
        st = tsr_plan_take_floats(plan, cat, (size_t)(floats), &(ptr));                      \
        if (st != TSR_OK)                                                                    \
            return st;                                                                       \
    } while (0)

static tsr_status carve_layer(tsr_gpt *g, tsr_memory_plan *plan, layer_acts *a)
{
    tsr_status st;
    const tsr_gpt_dims *d = &g->d;
    int64_t nt = rows_full(d), nl = rows_local(d), c = d->hidden;
    int64_t hd = d->l_heads * d->head_dim, gd = d->l_groups * d->head_dim;
    TAKE(TSR_MEM_ACTIVATIONS, a->ln1, nt * c);
    TAKE(TSR_MEM_ACTIVATIONS, a->ln1_mean, nl);
    TAKE(TSR_MEM_ACTIVATIONS, a->ln1_rstd, nl);
    TAKE(TSR_MEM_ACTIVATIONS, a->q, nt * hd);
    TAKE(TSR_MEM_ACTIVATIONS, a->k, nt * gd);
    TAKE(TSR_MEM_ACTIVATIONS, a->v, nt * gd);
    TAKE(TSR_MEM_ACTIVATIONS, a->att, nt * hd);
    TAKE(TSR_MEM_ACTIVATIONS, a->lse, nt * d->l_heads);
    TAKE(TSR_MEM_ACTIVATIONS, a->res1, nl * c);
    TAKE(TSR_MEM_ACTIVATIONS, a->ln2, nt * c);
    TAKE(TSR_MEM_ACTIVATIONS, a->ln2_mean, nl);
    TAKE(TSR_MEM_ACTIVATIONS, a->ln2_rstd, nl);
    TAKE(TSR_MEM_ACTIVATIONS, a->fc1, nt * d->l_fc1_out);
    TAKE(TSR_MEM_ACTIVATIONS, a->act, nt * d->l_ffn);
    TAKE(TSR_MEM_ACTIVATIONS, a->res2, nl * c);
    return TSR_OK;
}

#define TRY_CARVE(call)                                                                       \
    do {                                                                                     \
        st = (call);                                                                         \
        if (st != TSR_OK)                                                                    \
            return st;                                                                       \
    } while (0)

static tsr_status carve_activations(tsr_gpt *g, tsr_memory_plan *plan)
{
    tsr_status st;
    const tsr_gpt_dims *d = &g->d;
    int64_t nt = rows_full(d), nl = rows_local(d), c = d->hidden;
    int64_t hd = d->l_heads * d->head_dim, gd = d->l_groups * d->head_dim;
    int64_t slots = d->slots;
    for (int64_t i = 0; i < g->recompute_group; i++)
        TRY_CARVE(carve_layer(g, plan, &g->recompute[i]));
    for (int64_t i = 0; i < slots * d->local_layers; i++) {
        layer_acts *a = &g->acts[i];
        int64_t li = i % d->local_layers;
        int chunk = 0, j = (int)li, first = 0, count = 0;
        while (j >= d->chunk_layers[chunk])
            j -= d->chunk_layers[chunk++];
        if (tsr_gpt_recomputed(g, j, d->chunk_layers[chunk], &first, &count)) {
            *a = g->recompute[j - first]; /* shared workspace ... */
            TAKE(TSR_MEM_ACTIVATIONS, a->res2, nl * c); /* ... but its own output */
            continue;
        }
        TRY_CARVE(carve_layer(g, plan, a));
    }
    for (int64_t i = 0; i < slots * d->chunks; i++) {
        chunk_io *io = &g->io[i];
        TAKE(TSR_MEM_ACTIVATIONS, io->x_in, nl * c);
        if (d->pp > 1) {
            TAKE(TSR_MEM_ACTIVATIONS, io->d_recv, nl * c);
            TAKE(TSR_MEM_ACTIVATIONS, io->d_send, nl * c);
        }
    }
    for (int64_t s = 0; d->has_head && s < slots; s++) {
        head_slot *h = &g->heads[s];
        TAKE(TSR_MEM_ACTIVATIONS, h->lnf_full, nt * c);
        TAKE(TSR_MEM_ACTIVATIONS, h->lnf_mean, nl);
        TAKE(TSR_MEM_ACTIVATIONS, h->lnf_rstd, nl);
        TAKE(TSR_MEM_ACTIVATIONS, h->d_lnf_full, nt * c);
    }

    TAKE(TSR_MEM_SCRATCH, g->emb_full, nt * c);
    TAKE(TSR_MEM_SCRATCH, g->tp.scratch, nt * c);
    TAKE(TSR_MEM_SCRATCH, g->qkv, nt * d->l_qkv_out);
    TAKE(TSR_MEM_SCRATCH, g->branch_full, nt * c);
    TAKE(TSR_MEM_SCRATCH, g->d_branch_full, nt * c);
    TAKE(TSR_MEM_SCRATCH, g->d_ln_full, nt * c);
    TAKE(TSR_MEM_SCRATCH, g->d_att, nt * hd);
    TAKE(TSR_MEM_SCRATCH, g->d_q, nt * hd);
    TAKE(TSR_MEM_SCRATCH, g->d_k, nt * gd);
    TAKE(TSR_MEM_SCRATCH, g->d_v, nt * gd);
    TAKE(TSR_MEM_SCRATCH, g->d_q_pre, nt * hd);
    TAKE(TSR_MEM_SCRATCH, g->d_k_pre, nt * gd);
    TAKE(TSR_MEM_SCRATCH, g->d_qkv, nt * d->l_qkv_out);
    TAKE(TSR_MEM_SCRATCH, g->d_fc1, nt * d->l_fc1_out);
    TAKE(TSR_MEM_SCRATCH, g->d_act, nt * d->l_ffn);
    TAKE(TSR_MEM_SCRATCH, g->norm_local, nl * c);
    TAKE(TSR_MEM_SCRATCH, g->branch_local, nl * c);
    TAKE(TSR_MEM_SCRATCH, g->d_stream, nl * c);
    TAKE(TSR_MEM_SCRATCH, g->d_branch_local, nl * c);
    TAKE(TSR_MEM_SCRATCH, g->d_ln_local, nl * c);
    TAKE(TSR_MEM_SCRATCH, g->d_lnf_local, nl * c);
    TAKE(TSR_MEM_SCRATCH, g->logits, d->head_chunk_rows * d->l_vocab);
    TAKE(TSR_MEM_SCRATCH, g->row_max, nt);
    TAKE(TSR_MEM_SCRATCH, g->sumexp, nt);
    TAKE(TSR_MEM_SCRATCH, g->target_logit, nt);
    TAKE(TSR_MEM_SCRATCH, g->row_loss, nt);
    TAKE(TSR_MEM_SCRATCH, g->row_dloss, nt);
    TAKE(TSR_MEM_SCRATCH, g->ce_pack, 2 * nt);
    TAKE(TSR_MEM_SCRATCH, g->attn_scratch, tsr_attention_scratch_floats(d->seq, d->head_dim));
    if (!d->sp) { /* one sequence: the local names are the full buffers */
        g->norm_local = NULL;
        g->branch_local = g->branch_full;
        g->d_branch_local = g->d_branch_full;
        g->d_ln_local = g->d_ln_full;
        g->d_lnf_local = NULL; /* each slot's d_lnf_full (see select_slot) */
    }
    return TSR_OK;
}

static void build_spans(tsr_gpt *g)
{
    /* merge neighbouring parameters with the same decay flag */
    size_t count = 0;
    for (size_t i = 0; i < g->param_count_entries; i++) {
        const tsr_gpt_param *p = &g->table[i];
        if (!p->local)
            continue;
        size_t end = g->numel; /* up to the next local parameter */
        for (size_t j = i + 1; j < g->param_count_entries; j++)
            if (g->table[j].local) {
                end = g->table[j].offset;
                break;
            }
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
}

static tsr_status take_tables(tsr_gpt *g, tsr_memory_plan *plan, size_t count, int64_t layers)
{
    tsr_status st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, count * sizeof *g->table,
                                        (void **)&g->table);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, count * sizeof *g->spans,
                                 (void **)&g->spans);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, 2 * count * sizeof *g->tensors,
                                 (void **)&g->tensors);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (size_t)layers * sizeof *g->w,
                                 (void **)&g->w);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (size_t)layers * sizeof *g->g,
                                 (void **)&g->g);
    const tsr_gpt_dims *d = &g->d;
    size_t slots = (size_t)d->slots;
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (size_t)layers * slots * sizeof *g->acts,
                                 (void **)&g->acts);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH,
                                 (size_t)d->chunks * slots * sizeof *g->io, (void **)&g->io);
    g->recompute_group = recompute_group_size(&g->cfg);
    if (st == TSR_OK && g->recompute_group > 0)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH,
                                 (size_t)g->recompute_group * sizeof *g->recompute,
                                 (void **)&g->recompute);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, slots * sizeof *g->heads,
                                 (void **)&g->heads);
    if (st == TSR_OK && d->pp > 1) {
        size_t m = (size_t)d->microbatches, nt = (size_t)(d->micro_batch * d->seq);
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, m * (nt + 1) * sizeof(int32_t),
                                 (void **)&g->mb_tokens);
        if (st == TSR_OK)
            st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, m * nt * sizeof(int32_t),
                                     (void **)&g->mb_targets);
        if (st == TSR_OK)
            st = tsr_plan_take_floats(plan, TSR_MEM_SCRATCH, m * nt, &g->mb_mask);
        if (st == TSR_OK)
            st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, m * sizeof(tsr_microbatch),
                                     (void **)&g->mbs);
    }
    g->action_count = schedule_length(d);
    if (st == TSR_OK && g->action_count > 0)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, g->action_count * sizeof *g->actions,
                                 (void **)&g->actions);
    return st;
}

tsr_status tsr_gpt_create(const tsr_config *cfg, const tsr_gpt_dims *dims, tsr_grid *grid,
                          tsr_memory_plan *plan, tsr_gpt **out)
{
    *out = NULL;
    if ((dims->tp > 1 || dims->pp > 1) &&
        (grid == NULL || tsr_grid_tp_size(grid) != dims->tp || tsr_grid_pp_size(grid) != dims->pp))
        return tsr_error_set(TSR_ERR_INTERNAL, "a tensor- or pipeline-parallel model needs the "
                                               "grid of its groups");
    tsr_gpt *g = NULL;
    tsr_status st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, sizeof *g, (void **)&g);
    if (st != TSR_OK)
        return st;
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    g->d = *dims;
    g->tp.grid = grid;
    g->tp.size = dims->tp;
    g->tp.rank = dims->tp_rank;
    size_t count = tsr_gpt_param_table(dims, cfg, NULL, 0);
    st = take_tables(g, plan, count, dims->local_layers);
    if (st != TSR_OK)
        return st;
    g->param_count_entries = tsr_gpt_param_table(dims, cfg, g->table, count);
    g->numel = param_floats(g->table, count);
    TAKE(TSR_MEM_PARAMS, g->params, g->numel);
    TAKE(TSR_MEM_GRADS, g->grads, g->numel);
    bind_weights(g, g->params, g->w, &g->wte, &g->wpe, &g->lnf_w, &g->lnf_b, &g->head_w);
    bind_weights(g, g->grads, g->g, &g->g_wte, &g->g_wpe, &g->g_lnf_w, &g->g_lnf_b,
                 &g->g_head_w);
    st = carve_activations(g, plan);
    if (st != TSR_OK)
        return st;
    build_spans(g);
    for (size_t i = 0; i < g->param_count_entries; i++)
        describe_param(g, &g->table[i]);
    init_params(g);
    if (g->action_count > 0) {
        tsr_pp_schedule_spec spec = {dims->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                                      : TSR_PP_SCHEDULE_1F1B,
                                     dims->pp, dims->pp_rank, dims->microbatches, dims->chunks};
        size_t built = 0;
        st = tsr_pp_schedule_build(&spec, g->actions, g->action_count, &built);
        if (st != TSR_OK)
            return st;
        g->action_count = built;
    }
    tsr_gpt_select_slot(g, 0);
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
