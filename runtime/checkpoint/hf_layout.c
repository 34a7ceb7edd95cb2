/*
 * hf_layout.c - see hf_layout.h.
 */
#include "hf_layout.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 160

/* How tessera's rows come from the pieces. */
typedef enum row_map {
    MAP_ROWS,    /* one piece, row r is its row r */
    MAP_QKV,     /* q, k, v pieces; rows grouped per key/value group */
    MAP_GATE_UP, /* gate rows, then up rows */
} row_map;

/* A part of one Hugging Face tensor, seen as (rows, cols) with tessera's
 * cols: transposed Conv1D weights are seen transposed. */
typedef struct piece {
    char name[NAME_MAX_LEN];
    bool transposed;
    int64_t offset;     /* of the part's first row in that view */
    int64_t rows_total; /* rows of the whole view (the tensor's shape) */
} piece;

typedef struct binding {
    char tessera[NAME_MAX_LEN];
    int64_t cols; /* of the tessera tensor; 1 for vectors */
    row_map map;
    int pieces;
    piece piece[3];
} binding;

typedef struct layout {
    binding *b;
    size_t count, cap;
    int64_t heads, groups, head_dim, ffn, hidden;
} layout;

static binding *add(layout *l, row_map map, const char *fmt, int64_t layer, int64_t cols)
{
    if (l->count == l->cap)
        return NULL;
    binding *b = &l->b[l->count++];
    memset(b, 0, sizeof *b);
    snprintf(b->tessera, sizeof b->tessera, fmt, (long long)layer);
    b->map = map;
    b->cols = cols;
    return b;
}

static void add_piece(binding *b, const char *prefix, const char *fmt, int64_t layer,
                      bool transposed, int64_t offset, int64_t rows_total)
{
    if (b == NULL)
        return;
    piece *p = &b->piece[b->pieces++];
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, fmt, (long long)layer);
    snprintf(p->name, sizeof p->name, "%s%s", prefix, name);
    p->transposed = transposed;
    p->offset = offset;
    p->rows_total = rows_total;
}

/* A binding of one Hugging Face tensor to one tessera tensor, row for row. */
static void add_same(layout *l, const char *tessera, const char *prefix, const char *hf,
                     int64_t layer, bool transposed, int64_t rows, int64_t cols)
{
    add_piece(add(l, MAP_ROWS, tessera, layer, cols), prefix, hf, layer, transposed, 0, rows);
}

static void gpt2_layout(layout *l, const tsr_config *cfg, const char *p)
{
    int64_t c = l->hidden, f = l->ffn, vocab = cfg->vocab_size;
    int64_t positions =
        cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings : cfg->seq_length;
    add_same(l, "embedding.word_embeddings.weight", p, "wte.weight", 0, false, vocab, c);
    add_same(l, "embedding.position_embeddings.weight", p, "wpe.weight", 0, false, positions, c);
    for (int64_t i = 0; i < cfg->num_layers; i++) {
        const char *suffix[] = {"weight", "bias"};
        for (int s = 0; s < 2; s++) {
            char t[NAME_MAX_LEN], h[NAME_MAX_LEN];
            bool w = s == 0;
            int64_t in = w ? c : 1, in_ffn = w ? f : 1;
            snprintf(t, sizeof t, "decoder.layers.%%lld.input_layernorm.%s", suffix[s]);
            snprintf(h, sizeof h, "h.%%lld.ln_1.%s", suffix[s]);
            add_same(l, t, p, h, i, false, c, 1);
            snprintf(t, sizeof t, "decoder.layers.%%lld.self_attention.linear_qkv.%s", suffix[s]);
            snprintf(h, sizeof h, "h.%%lld.attn.c_attn.%s", suffix[s]);
            binding *qkv = add(l, MAP_QKV, t, i, in);
            for (int part = 0; part < 3; part++)
                add_piece(qkv, p, h, i, w, part * c, 3 * c);
            snprintf(t, sizeof t, "decoder.layers.%%lld.self_attention.linear_proj.%s", suffix[s]);
            snprintf(h, sizeof h, "h.%%lld.attn.c_proj.%s", suffix[s]);
            add_same(l, t, p, h, i, w, c, in);
            snprintf(t, sizeof t, "decoder.layers.%%lld.pre_mlp_layernorm.%s", suffix[s]);
            snprintf(h, sizeof h, "h.%%lld.ln_2.%s", suffix[s]);
            add_same(l, t, p, h, i, false, c, 1);
            snprintf(t, sizeof t, "decoder.layers.%%lld.mlp.linear_fc1.%s", suffix[s]);
            snprintf(h, sizeof h, "h.%%lld.mlp.c_fc.%s", suffix[s]);
            add_same(l, t, p, h, i, w, f, in);
            snprintf(t, sizeof t, "decoder.layers.%%lld.mlp.linear_fc2.%s", suffix[s]);
            snprintf(h, sizeof h, "h.%%lld.mlp.c_proj.%s", suffix[s]);
            add_same(l, t, p, h, i, w, c, in_ffn);
        }
    }
    add_same(l, "decoder.final_layernorm.weight", p, "ln_f.weight", 0, false, c, 1);
    add_same(l, "decoder.final_layernorm.bias", p, "ln_f.bias", 0, false, c, 1);
    if (cfg->untie_embeddings_and_output_weights)
        add_same(l, "output_layer.weight", "", "lm_head.weight", 0, false, vocab, c);
}

static void llama_layout(layout *l, const tsr_config *cfg, const char *p)
{
    int64_t c = l->hidden, f = l->ffn, vocab = cfg->vocab_size;
    int64_t q_rows = l->heads * l->head_dim, kv_rows = l->groups * l->head_dim;
    add_same(l, "embedding.word_embeddings.weight", p, "embed_tokens.weight", 0, false, vocab, c);
    for (int64_t i = 0; i < cfg->num_layers; i++) {
        add_same(l, "decoder.layers.%lld.input_layernorm.weight", p,
                 "layers.%lld.input_layernorm.weight", i, false, c, 1);
        binding *qkv =
            add(l, MAP_QKV, "decoder.layers.%lld.self_attention.linear_qkv.weight", i, c);
        add_piece(qkv, p, "layers.%lld.self_attn.q_proj.weight", i, false, 0, q_rows);
        add_piece(qkv, p, "layers.%lld.self_attn.k_proj.weight", i, false, 0, kv_rows);
        add_piece(qkv, p, "layers.%lld.self_attn.v_proj.weight", i, false, 0, kv_rows);
        add_same(l, "decoder.layers.%lld.self_attention.linear_proj.weight", p,
                 "layers.%lld.self_attn.o_proj.weight", i, false, c, q_rows);
        add_same(l, "decoder.layers.%lld.pre_mlp_layernorm.weight", p,
                 "layers.%lld.post_attention_layernorm.weight", i, false, c, 1);
        binding *fc1 = add(l, MAP_GATE_UP, "decoder.layers.%lld.mlp.linear_fc1.weight", i, c);
        add_piece(fc1, p, "layers.%lld.mlp.gate_proj.weight", i, false, 0, f);
        add_piece(fc1, p, "layers.%lld.mlp.up_proj.weight", i, false, 0, f);
        add_same(l, "decoder.layers.%lld.mlp.linear_fc2.weight", p,
                 "layers.%lld.mlp.down_proj.weight", i, false, c, f);
    }
    add_same(l, "decoder.final_layernorm.weight", p, "norm.weight", 0, false, c, 1);
    if (cfg->untie_embeddings_and_output_weights)
        add_same(l, "output_layer.weight", "", "lm_head.weight", 0, false, vocab, c);
}

static tsr_status layout_build(const tsr_config *cfg, tsr_hf_family family, const char *prefix,
                               layout *l)
{
    memset(l, 0, sizeof *l);
    l->cap = (size_t)cfg->num_layers * 14 + 8;
    l->b = calloc(l->cap, sizeof *l->b);
    if (l->b == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    l->hidden = cfg->hidden_size;
    l->heads = cfg->num_attention_heads;
    l->groups = tsr_config_num_query_groups(cfg);
    l->head_dim = l->hidden / l->heads;
    l->ffn = tsr_config_ffn_hidden_size(cfg);
    if (family == TSR_HF_GPT2)
        gpt2_layout(l, cfg, prefix);
    else
        llama_layout(l, cfg, prefix);
    return TSR_OK;
}

/* The piece and its row that tessera row r comes from. */
static void source_row(const layout *l, const binding *b, int64_t r, int *pi, int64_t *row)
{
    if (b->map == MAP_ROWS) {
        *pi = 0;
        *row = r;
    } else if (b->map == MAP_GATE_UP) {
        *pi = r < l->ffn ? 0 : 1;
        *row = r < l->ffn ? r : r - l->ffn;
    } else {
        int64_t per_group = l->heads / l->groups, d = l->head_dim;
        int64_t g = r / ((per_group + 2) * d), j = r / d % (per_group + 2), e = r % d;
        *pi = j < per_group ? 0 : j == per_group ? 1 : 2;
        *row = j < per_group ? (g * per_group + j) * d + e : g * d + e;
    }
    *row += b->piece[*pi].offset;
}

/* Copies between tessera's tensor t and the binding's pieces, held in
 * views[] (each the whole Hugging Face tensor, in its own layout). */
static void copy_rows(const layout *l, const binding *b, const tsr_hf_tensor *t, float **views,
                      bool to_tessera)
{
    for (int64_t r = 0; r < t->rows; r++) {
        int pi = 0;
        int64_t row = 0;
        source_row(l, b, r, &pi, &row);
        const piece *p = &b->piece[pi];
        float *hf = views[pi], *ts = t->data + r * t->cols;
        for (int64_t c = 0; c < t->cols; c++) {
            float *h = p->transposed ? &hf[c * p->rows_total + row] : &hf[row * t->cols + c];
            if (to_tessera)
                ts[c] = *h;
            else
                *h = ts[c];
        }
    }
}

static const tsr_hf_tensor *find_tessera(const tsr_hf_tensor *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* Every tensor of the model has a binding, and every binding a tensor of
 * the model of its shape. */
static tsr_status check_bound(const layout *l, const tsr_hf_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < l->count && strcmp(l->b[j].tessera, t[i].name) != 0)
            j++;
        if (j == l->count)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "tensor %s of this model has no place in a Hugging Face "
                                 "model; tessera converts the GPT spec's tensors only",
                                 t[i].name);
    }
    for (size_t j = 0; j < l->count; j++) {
        const tsr_hf_tensor *m = find_tessera(t, n, l->b[j].tessera);
        if (m == NULL || m->cols != l->b[j].cols)
            return tsr_error_set(TSR_ERR_INTERNAL, "the model has no tensor %s of %lld columns",
                                 l->b[j].tessera, (long long)l->b[j].cols);
    }
    return TSR_OK;
}

/* Shape of piece p's tensor as the file must hold it. */
static void expected_shape(const piece *p, int64_t cols, int *ndim, int64_t shape[2])
{
    *ndim = cols == 1 ? 1 : 2;
    shape[0] = p->transposed ? cols : p->rows_total;
    shape[1] = p->transposed ? p->rows_total : cols;
    if (cols == 1)
        shape[0] = p->rows_total;
}

typedef struct found {
    const tsr_st_file *file;
    const tsr_st_tensor *tensor;
} found;

static tsr_status find_hf(const tsr_st_file *files, size_t nfiles, const char *name,
                          const tsr_config *cfg, tsr_hf_family family, found *out)
{
    out->tensor = NULL;
    for (size_t f = 0; f < nfiles; f++) {
        const tsr_st_tensor *t = tsr_st_find(&files[f], name);
        if (t != NULL && out->tensor != NULL)
            return tsr_error_set(TSR_ERR_FORMAT, "tensor %s is in both %s and %s", name,
                                 out->file->path, files[f].path);
        if (t != NULL)
            *out = (found){&files[f], t};
    }
    if (out->tensor == NULL)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s%s lacks tensor %s, which config.json's %s model (%d layers%s) "
                             "needs",
                             files[0].path, nfiles > 1 ? " and the other shards" : "", name,
                             tsr_hf_family_name(family), cfg->num_layers,
                             cfg->untie_embeddings_and_output_weights ? ", untied output" : "");
    return TSR_OK;
}

static tsr_status check_shape(const found *h, const piece *p, int64_t cols)
{
    int ndim = 0;
    int64_t shape[2];
    expected_shape(p, cols, &ndim, shape);
    const tsr_st_tensor *t = h->tensor;
    bool same =
        t->ndim == ndim && t->shape[0] == shape[0] && (ndim == 1 || t->shape[1] == shape[1]);
    if (same)
        return TSR_OK;
    char got[96] = "[", *g = got + 1;
    for (int d = 0; d < t->ndim && g < got + sizeof got - 24; d++)
        g += snprintf(g, (size_t)(got + sizeof got - g), "%s%lld", d ? ", " : "",
                      (long long)t->shape[d]);
    snprintf(g, (size_t)(got + sizeof got - g), "]");
    return tsr_error_set(TSR_ERR_FORMAT,
                         "%s: tensor %s has shape %s but config.json's model needs [%lld%s%lld]; "
                         "config.json and the weights disagree",
                         h->file->path, t->name, got, (long long)shape[0], ndim == 2 ? ", " : "",
                         ndim == 2 ? (long long)shape[1] : 0LL);
}

/* The buffers transformers recomputes or ties: present in some files,
 * never weights of their own. */
static bool ignorable(const char *name, tsr_hf_family family, const tsr_config *cfg)
{
    size_t n = strlen(name);
#define ENDS(s) (n >= sizeof(s) - 1 && strcmp(name + n - (sizeof(s) - 1), s) == 0)
    if (!cfg->untie_embeddings_and_output_weights && strcmp(name, "lm_head.weight") == 0)
        return true;
    if (family == TSR_HF_GPT2)
        return ENDS(".attn.bias") || ENDS(".attn.masked_bias");
    return ENDS(".rotary_emb.inv_freq");
#undef ENDS
}

/* Nothing in the files is left over: a tensor the layout does not use is
 * a config.json that describes another model (more layers, say). */
static tsr_status check_all_used(const layout *l, const tsr_st_file *files, size_t nfiles,
                                 tsr_hf_family family, const tsr_config *cfg)
{
    for (size_t f = 0; f < nfiles; f++)
        for (size_t i = 0; i < files[f].count; i++) {
            const char *name = files[f].tensors[i].name;
            bool used = ignorable(name, family, cfg);
            for (size_t j = 0; j < l->count && !used; j++)
                for (int k = 0; k < l->b[j].pieces && !used; k++)
                    used = strcmp(l->b[j].piece[k].name, name) == 0;
            if (!used)
                return tsr_error_set(TSR_ERR_FORMAT,
                                     "%s holds tensor %s, which config.json's %s model (%d "
                                     "layers) has no place for; config.json and the weights "
                                     "disagree",
                                     files[f].path, name, tsr_hf_family_name(family),
                                     cfg->num_layers);
        }
    return TSR_OK;
}

/* GPT-2 files are saved with or without the "transformer." prefix (from
 * GPT2LMHeadModel or GPT2Model), LLaMA's with or without "model.". */
static const char *prefix_of(const tsr_st_file *files, size_t nfiles, tsr_hf_family family)
{
    const char *with =
        family == TSR_HF_GPT2 ? "transformer.wte.weight" : "model.embed_tokens.weight";
    for (size_t f = 0; f < nfiles; f++)
        if (tsr_st_find(&files[f], with) != NULL)
            return family == TSR_HF_GPT2 ? "transformer." : "model.";
    return "";
}

static tsr_status import_binding(const layout *l, const binding *b, const tsr_config *cfg,
                                 tsr_hf_family family, const tsr_st_file *files, size_t nfiles,
                                 const tsr_hf_tensor *t)
{
    float *views[3] = {NULL, NULL, NULL};
    tsr_status st = TSR_OK;
    for (int k = 0; k < b->pieces && st == TSR_OK; k++) {
        if (k > 0 && strcmp(b->piece[k].name, b->piece[0].name) == 0) {
            views[k] = views[0]; /* c_attn: three parts of one tensor */
            continue;
        }
        found h;
        st = find_hf(files, nfiles, b->piece[k].name, cfg, family, &h);
        if (st == TSR_OK &&
            (views[k] = malloc((size_t)h.tensor->numel * sizeof(float) + 4)) == NULL)
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", h.tensor->name);
        if (st == TSR_OK)
            st = tsr_st_read_f32(h.file, h.tensor, views[k]);
    }
    if (st == TSR_OK)
        copy_rows(l, b, t, views, true);
    for (int k = 0; k < b->pieces; k++)
        if (k == 0 || views[k] != views[0])
            free(views[k]);
    return st;
}

/* Every tensor the layout needs is in the files with its shape, and the
 * files hold nothing else. */
static tsr_status check_files(const layout *l, const tsr_config *cfg, tsr_hf_family family,
                              const tsr_st_file *files, size_t nfiles)
{
    tsr_status st = check_all_used(l, files, nfiles, family, cfg);
    for (size_t j = 0; j < l->count && st == TSR_OK; j++) {
        const binding *b = &l->b[j];
        for (int k = 0; k < b->pieces && st == TSR_OK; k++) {
            found h;
            st = find_hf(files, nfiles, b->piece[k].name, cfg, family, &h);
            if (st == TSR_OK)
                st = check_shape(&h, &b->piece[k], b->cols);
        }
    }
    return st;
}

void tsr_hf_tensors_of(const tsr_model *model, tsr_hf_tensor *out, size_t *count)
{
    *count = 0;
    for (size_t i = 0; i < model->tensor_count; i++) {
        const tsr_tensor_desc *t = &model->tensors[i];
        if (i > 0 && strcmp(t->name, model->tensors[i - 1].name) == 0)
            continue;
        float *base = t->frozen ? model->frozen : model->params;
        out[(*count)++] = (tsr_hf_tensor){t->name, t->rows, t->cols, base + t->offset};
    }
}

tsr_status tsr_hf_check(const tsr_config *cfg, tsr_hf_family family, const tsr_st_file *files,
                        size_t file_count)
{
    layout l;
    tsr_status st = layout_build(cfg, family, prefix_of(files, file_count, family), &l);
    if (st == TSR_OK)
        st = check_files(&l, cfg, family, files, file_count);
    free(l.b);
    return st;
}

tsr_status tsr_hf_import(const tsr_config *cfg, tsr_hf_family family, const tsr_st_file *files,
                         size_t file_count, tsr_hf_tensor *tensors, size_t count)
{
    layout l;
    tsr_status st = layout_build(cfg, family, prefix_of(files, file_count, family), &l);
    if (st == TSR_OK)
        st = check_bound(&l, tensors, count);
    if (st == TSR_OK)
        st = check_files(&l, cfg, family, files, file_count);
    for (size_t j = 0; j < l.count && st == TSR_OK; j++)
        st = import_binding(&l, &l.b[j], cfg, family, files, file_count,
                            find_tessera(tensors, count, l.b[j].tessera));
    free(l.b);
    return st;
}

tsr_status tsr_hf_export(const tsr_config *cfg, tsr_hf_family family, const tsr_hf_tensor *tensors,
                         size_t count, const char *path)
{
    layout l;
    const char *prefix = family == TSR_HF_GPT2 ? "transformer." : "model.";
    tsr_status st = layout_build(cfg, family, prefix, &l);
    if (st == TSR_OK)
        st = check_bound(&l, tensors, count);
    size_t cap = l.count * 3, n = 0;
    tsr_st_out *out = st == TSR_OK ? calloc(cap, sizeof *out) : NULL;
    if (st == TSR_OK && out == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
    for (size_t j = 0; j < l.count && st == TSR_OK; j++) {
        const binding *b = &l.b[j];
        const tsr_hf_tensor *t = find_tessera(tensors, count, b->tessera);
        float *views[3] = {NULL, NULL, NULL};
        for (int k = 0; k < b->pieces && st == TSR_OK; k++) {
            if (k > 0 && strcmp(b->piece[k].name, b->piece[0].name) == 0) {
                views[k] = views[0];
                continue;
            }
            tsr_st_out *o = &out[n];
            expected_shape(&b->piece[k], t->cols, &o->ndim, o->shape);
            size_t floats = (size_t)(b->piece[k].rows_total * t->cols);
            views[k] = malloc(floats * sizeof(float) + 4);
            if (views[k] == NULL) {
                st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
                break;
            }
            o->name = b->piece[k].name;
            o->data = views[k];
            n++;
        }
        if (st == TSR_OK)
            copy_rows(&l, b, t, views, false);
    }
    if (st == TSR_OK)
        st = tsr_st_write(path, out, n);
    for (size_t i = 0; i < n; i++)
        free((void *)out[i].data);
    free(out);
    free(l.b);
    return st;
}
