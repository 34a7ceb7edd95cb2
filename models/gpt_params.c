/*
 * gpt_params.c - shapes, names and initialisation of the GPT parameters,
 * and Megatron's FLOPs formula.
 *
 * The table order is the memory order: embedding, positions, then each
 * layer's parameters, final norm, output layer. Names follow
 * Megatron-Core so checkpoints read naturally next to Megatron's.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpt.h"
#include "sharding/pipeline_layers.h"
#include "sharding/pipeline_schedule.h"

tsr_gpt_dims tsr_gpt_dims_from_config(const tsr_config *cfg, int vocab_size, int tp_rank)
{
    tsr_gpt_dims d;
    d.layers = cfg->num_layers;
    d.hidden = cfg->hidden_size;
    d.heads = cfg->num_attention_heads;
    d.groups = tsr_config_num_query_groups(cfg);
    d.head_dim = d.hidden / d.heads;
    d.ffn = tsr_config_ffn_hidden_size(cfg);
    d.fc1_out = cfg->swiglu ? 2 * d.ffn : d.ffn;
    d.qkv_out = (d.heads + 2 * d.groups) * d.head_dim;
    d.vocab = vocab_size;
    d.padded_vocab = tsr_config_padded_vocab_size(cfg, vocab_size);
    d.seq = cfg->seq_length;
    d.max_positions = cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings
                                                       : cfg->seq_length;
    d.micro_batch = cfg->micro_batch_size;
    int64_t rows = d.micro_batch * d.seq;
    d.head_chunk_rows = rows < 256 ? rows : 256;
    d.tp = cfg->tensor_model_parallel_size;
    d.tp_rank = tp_rank;
    d.sp = cfg->sequence_parallel && d.tp > 1;
    d.l_heads = d.heads / d.tp;
    d.l_groups = d.groups / d.tp;
    d.l_ffn = d.ffn / d.tp;
    d.l_fc1_out = d.fc1_out / d.tp;
    d.l_qkv_out = d.qkv_out / d.tp;
    d.l_vocab = d.padded_vocab / d.tp;
    d.vocab_start = (int64_t)tp_rank * d.l_vocab;
    d.l_seq = d.sp ? d.seq / d.tp : d.seq;
    d.pp = 1;
    d.pp_rank = 0;
    d.chunks = 1;
    d.chunk_first_layer[0] = 0;
    d.chunk_layers[0] = cfg->num_layers;
    d.has_embedding = d.has_head = true;
    d.local_layers = d.layers;
    d.slots = 1;
    d.microbatches = 1;
    return d;
}

tsr_status tsr_gpt_dims_set_pipeline(tsr_gpt_dims *d, const tsr_config *cfg, int pp_rank,
                                     int microbatches)
{
    tsr_pp_layer_split split;
    tsr_status st = tsr_pp_layers_from_config(cfg, &split);
    if (st != TSR_OK)
        return st;
    if (split.num_chunks > TSR_GPT_MAX_CHUNKS)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%d virtual pipeline stages per rank; at most "
                                                  "%d are supported",
                             split.num_chunks, TSR_GPT_MAX_CHUNKS);
    d->pp = split.pp_size;
    d->pp_rank = pp_rank;
    d->chunks = split.num_chunks;
    d->local_layers = 0;
    for (int c = 0; c < d->chunks; c++) {
        st = tsr_pp_layers_range(&split, pp_rank, c, &d->chunk_first_layer[c],
                                 &d->chunk_layers[c]);
        if (st != TSR_OK)
            return st;
        d->local_layers += d->chunk_layers[c];
    }
    d->has_embedding = tsr_pp_layers_has_embedding(&split, pp_rank, 0);
    d->has_head = tsr_pp_layers_has_head(&split, pp_rank, d->chunks - 1);
    d->microbatches = microbatches;
    d->slots = 1;
    if (d->pp > 1) {
        tsr_pp_schedule_spec spec = {d->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                                   : TSR_PP_SCHEDULE_1F1B,
                                     d->pp, pp_rank, microbatches, d->chunks};
        st = tsr_pp_schedule_max_in_flight(&spec, &d->slots);
    }
    return st;
}

typedef struct table_builder {
    tsr_gpt_param *table;
    size_t capacity, count, offset;
    int tp;
    bool local; /* whether the parameters being added live on this stage */
} table_builder;

static void add(table_builder *b, const char *name, int64_t rows, int64_t cols,
                tsr_gpt_split split, float std, float value, bool decay)
{
    int64_t local_rows = rows, local_cols = cols;
    if (split == TSR_SPLIT_ROWS || split == TSR_SPLIT_GATE_UP)
        local_rows = rows / b->tp;
    else if (split == TSR_SPLIT_COLS)
        local_cols = cols / b->tp;
    if (b->table != NULL && b->count < b->capacity) {
        tsr_gpt_param *p = &b->table[b->count];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->rows = rows;
        p->cols = cols;
        p->split = split;
        p->local = b->local;
        p->local_rows = local_rows;
        p->local_cols = local_cols;
        p->offset = b->offset;
        p->init_std = std;
        p->init_value = value;
        p->decay = decay;
    }
    b->count++;
    /* 16-float alignment keeps every parameter on its own cache lines */
    if (b->local)
        b->offset += ((size_t)(local_rows * local_cols) + 15) / 16 * 16;
}

size_t tsr_gpt_param_table(const tsr_gpt_dims *d, const tsr_config *cfg, tsr_gpt_param *table,
                           size_t capacity)
{
    table_builder b = {table, capacity, 0, 0, d->tp, d->has_embedding};
    float std = (float)cfg->init_method_std;
    float out_std = std / sqrtf(2.0f * (float)d->layers);
    bool bias = !cfg->disable_bias_linear;
    bool layernorm = cfg->normalization == TSR_NORM_LAYERNORM;
    tsr_gpt_split fc1_split = cfg->swiglu ? TSR_SPLIT_GATE_UP : TSR_SPLIT_ROWS;
    char name[96];
    add(&b, "embedding.word_embeddings.weight", d->padded_vocab, d->hidden, TSR_SPLIT_ROWS, std,
        0, true);
    if (cfg->position_embedding_type == TSR_POS_LEARNED_ABSOLUTE)
        add(&b, "embedding.position_embeddings.weight", d->max_positions, d->hidden,
            TSR_SPLIT_NONE, std, 0, true);
    for (int64_t l = 0; l < d->layers; l++) {
        b.local = false;
        for (int c = 0; c < d->chunks; c++)
            if (l >= d->chunk_first_layer[c] && l < d->chunk_first_layer[c] + d->chunk_layers[c])
                b.local = true;
#define LAYER(suffix) (snprintf(name, sizeof name, "decoder.layers.%lld.%s", (long long)l, suffix), name)
        add(&b, LAYER("input_layernorm.weight"), d->hidden, 1, TSR_SPLIT_NONE, 0, 1, false);
        if (layernorm)
            add(&b, LAYER("input_layernorm.bias"), d->hidden, 1, TSR_SPLIT_NONE, 0, 0, false);
        add(&b, LAYER("self_attention.linear_qkv.weight"), d->qkv_out, d->hidden,
            TSR_SPLIT_ROWS, std, 0, true);
        if (bias)
            add(&b, LAYER("self_attention.linear_qkv.bias"), d->qkv_out, 1, TSR_SPLIT_ROWS, 0, 0,
                false);
        add(&b, LAYER("self_attention.linear_proj.weight"), d->hidden, d->heads * d->head_dim,
            TSR_SPLIT_COLS, out_std, 0, true);
        if (bias)
            add(&b, LAYER("self_attention.linear_proj.bias"), d->hidden, 1, TSR_SPLIT_NONE, 0, 0,
                false);
        add(&b, LAYER("pre_mlp_layernorm.weight"), d->hidden, 1, TSR_SPLIT_NONE, 0, 1, false);
        if (layernorm)
            add(&b, LAYER("pre_mlp_layernorm.bias"), d->hidden, 1, TSR_SPLIT_NONE, 0, 0, false);
        add(&b, LAYER("mlp.linear_fc1.weight"), d->fc1_out, d->hidden, fc1_split, std, 0, true);
        if (bias)
            add(&b, LAYER("mlp.linear_fc1.bias"), d->fc1_out, 1, fc1_split, 0, 0, false);
        add(&b, LAYER("mlp.linear_fc2.weight"), d->hidden, d->ffn, TSR_SPLIT_COLS, out_std, 0,
            true);
        if (bias)
            add(&b, LAYER("mlp.linear_fc2.bias"), d->hidden, 1, TSR_SPLIT_NONE, 0, 0, false);
#undef LAYER
    }
    b.local = d->has_head;
    add(&b, "decoder.final_layernorm.weight", d->hidden, 1, TSR_SPLIT_NONE, 0, 1, false);
    if (layernorm)
        add(&b, "decoder.final_layernorm.bias", d->hidden, 1, TSR_SPLIT_NONE, 0, 0, false);
    if (cfg->untie_embeddings_and_output_weights)
        add(&b, "output_layer.weight", d->padded_vocab, d->hidden, TSR_SPLIT_ROWS, std, 0, true);
    else if (d->pp > 1) { /* the last stage's copy of the tied table (named on every stage) */
        b.local = d->has_head && !d->has_embedding;
        add(&b, "embedding.word_embeddings.weight", d->padded_vocab, d->hidden, TSR_SPLIT_ROWS,
            std, 0, true);
    }
    (void)name;
    return b.count;
}

double tsr_gpt_flops_per_sample(const tsr_config *cfg, const tsr_gpt_dims *d)
{
    /* Megatron-LM's num_floating_point_operations() for one sample:
     * 12 = 3 (fwd + 2x bwd) x 2 (multiply-add) x 2 (two GEMMs per block
     * half), with attention counted over the full T x T square */
    double h = (double)d->hidden, s = (double)d->seq, L = (double)d->layers;
    double gated = cfg->swiglu ? 1.5 : 1.0;
    double attention = 1.0 + (double)d->groups / (double)d->heads + s / h;
    double mlp = (double)d->ffn / h * gated;
    double logits = (double)d->padded_vocab / (2.0 * L * h);
    return 12.0 * s * L * h * h * (attention + mlp + logits);
}
