/*
 * hf_config.c - see hf_config.h. Key names and defaults are those of
 * transformers' GPT2Config and LlamaConfig.
 */
#include "hf_config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CONFIG_MAX_BYTES (1 << 20)

const char *tsr_hf_family_name(tsr_hf_family family)
{
    return family == TSR_HF_GPT2 ? "gpt2" : "llama";
}

typedef struct reader {
    json_t *root;
    const char *path;
    tsr_status st; /* the first error; later reads do nothing */
} reader;

static tsr_status key_error(reader *r, const char *key, const char *want)
{
    if (r->st == TSR_OK)
        r->st = tsr_error_set(TSR_ERR_FORMAT, "%s: \"%s\" must be %s", r->path, key, want);
    return r->st;
}

/* An integer in [lo, hi]; def when the key is absent or null (def < lo:
 * the key is required). */
static int get_int(reader *r, const char *key, int def, int lo, int hi)
{
    json_t *v = json_object_get(r->root, key);
    if (v == NULL || json_is_null(v)) {
        if (def < lo) {
            if (r->st == TSR_OK)
                r->st = tsr_error_set(TSR_ERR_FORMAT, "%s lacks \"%s\"", r->path, key);
            return lo;
        }
        return def;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char want[64];
        snprintf(want, sizeof want, "an integer from %d to %d", lo, hi);
        key_error(r, key, want);
        return lo;
    }
    return (int)json_integer_value(v);
}

static double get_real(reader *r, const char *key, double def)
{
    json_t *v = json_object_get(r->root, key);
    if (v == NULL || json_is_null(v))
        return def;
    if (!json_is_number(v) || !(json_number_value(v) > 0.0) || !isfinite(json_number_value(v))) {
        key_error(r, key, "a positive number");
        return def;
    }
    return json_number_value(v);
}

static bool get_bool(reader *r, const char *key, bool def)
{
    json_t *v = json_object_get(r->root, key);
    if (v == NULL || json_is_null(v))
        return def;
    if (!json_is_boolean(v)) {
        key_error(r, key, "true or false");
        return def;
    }
    return json_is_true(v);
}

static const char *get_string(reader *r, const char *key, const char *def)
{
    json_t *v = json_object_get(r->root, key);
    if (v == NULL || json_is_null(v))
        return def;
    if (!json_is_string(v)) {
        key_error(r, key, "a string");
        return def;
    }
    return json_string_value(v);
}

/* A setting of the file tessera's model cannot reproduce. */
static void refuse(reader *r, const char *key, const char *why)
{
    if (r->st == TSR_OK)
        r->st = tsr_error_set(TSR_ERR_INVALID_ARG,
                              "%s: \"%s\" %s; tessera cannot convert this "
                              "model",
                              r->path, key, why);
}

static void read_gpt2(reader *r, tsr_config *cfg)
{
    cfg->vocab_size = get_int(r, "vocab_size", 50257, 1, 1 << 30);
    cfg->max_position_embeddings = get_int(r, "n_positions", 1024, 1, 1 << 24);
    cfg->hidden_size = get_int(r, "n_embd", 768, 1, 1 << 20);
    cfg->num_layers = get_int(r, "n_layer", 12, 1, 1 << 16);
    cfg->num_attention_heads = get_int(r, "n_head", 12, 1, 1 << 16);
    cfg->ffn_hidden_size = get_int(r, "n_inner", 4 * cfg->hidden_size, 1, 1 << 24);
    cfg->norm_epsilon = get_real(r, "layer_norm_epsilon", 1e-5);
    cfg->init_method_std = get_real(r, "initializer_range", 0.02);
    const char *act = get_string(r, "activation_function", "gelu_new");
    if (strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
        refuse(r, "activation_function",
               "is not gelu_new or gelu_pytorch_tanh (tessera's GELU "
               "is the tanh approximation)");
    if (!get_bool(r, "scale_attn_weights", true))
        refuse(r, "scale_attn_weights", "is false (tessera scales scores by 1/sqrt(head dim))");
    if (get_bool(r, "scale_attn_by_inverse_layer_idx", false))
        refuse(r, "scale_attn_by_inverse_layer_idx", "is true");
    if (get_bool(r, "add_cross_attention", false))
        refuse(r, "add_cross_attention", "is true (an encoder-decoder model)");
    cfg->normalization = TSR_NORM_LAYERNORM;
    cfg->position_embedding_type = TSR_POS_LEARNED_ABSOLUTE;
    cfg->swiglu = false;
    cfg->disable_bias_linear = false;
    cfg->num_query_groups = 0;
    cfg->group_query_attention = false;
    cfg->untie_embeddings_and_output_weights = !get_bool(r, "tie_word_embeddings", true);
}

static void read_llama(reader *r, tsr_config *cfg)
{
    cfg->vocab_size = get_int(r, "vocab_size", 32000, 1, 1 << 30);
    cfg->hidden_size = get_int(r, "hidden_size", 4096, 1, 1 << 20);
    cfg->ffn_hidden_size = get_int(r, "intermediate_size", 11008, 1, 1 << 24);
    cfg->num_layers = get_int(r, "num_hidden_layers", 32, 1, 1 << 16);
    cfg->num_attention_heads = get_int(r, "num_attention_heads", 32, 1, 1 << 16);
    int groups = get_int(r, "num_key_value_heads", cfg->num_attention_heads, 1, 1 << 16);
    cfg->num_query_groups = groups;
    cfg->group_query_attention = groups != cfg->num_attention_heads;
    cfg->max_position_embeddings = get_int(r, "max_position_embeddings", 2048, 1, 1 << 24);
    cfg->norm_epsilon = get_real(r, "rms_norm_eps", 1e-6);
    cfg->rotary_base = get_real(r, "rope_theta", 10000.0);
    cfg->init_method_std = get_real(r, "initializer_range", 0.02);
    cfg->untie_embeddings_and_output_weights = !get_bool(r, "tie_word_embeddings", false);
    int head_dim = get_int(r, "head_dim", 0, 0, 1 << 16);
    if (r->st == TSR_OK && head_dim != 0 &&
        (int64_t)head_dim * cfg->num_attention_heads != cfg->hidden_size)
        refuse(r, "head_dim", "is not hidden_size / num_attention_heads");
    const char *act = get_string(r, "hidden_act", "silu");
    if (strcmp(act, "silu") != 0)
        refuse(r, "hidden_act", "is not silu (tessera's gated MLP is SwiGLU)");
    json_t *scaling = json_object_get(r->root, "rope_scaling");
    if (scaling != NULL && !json_is_null(scaling))
        refuse(r, "rope_scaling", "is set (tessera's rotary embedding has no scaling)");
    if (get_bool(r, "attention_bias", false))
        refuse(r, "attention_bias", "is true (tessera's LLaMA has no biases)");
    if (get_bool(r, "mlp_bias", false))
        refuse(r, "mlp_bias", "is true (tessera's LLaMA has no biases)");
    cfg->normalization = TSR_NORM_RMSNORM;
    cfg->position_embedding_type = TSR_POS_ROPE;
    cfg->swiglu = true;
    cfg->disable_bias_linear = true;
}

tsr_status tsr_hf_config_read(const char *path, tsr_config *cfg, tsr_hf_family *family)
{
    json_error_t err;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "cannot open %s", path);
    char *text = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = text != NULL ? fread(text, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (text == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    if (n > CONFIG_MAX_BYTES) {
        free(text);
        return tsr_error_set(TSR_ERR_FORMAT, "%s is larger than 1 MiB; not a model config", path);
    }
    reader r = {json_loadb(text, n, JSON_REJECT_DUPLICATES, &err), path, TSR_OK};
    free(text);
    if (r.root == NULL)
        return tsr_error_set(TSR_ERR_FORMAT, "%s is not valid JSON: %s (line %d, column %d)", path,
                             err.text, err.line, err.column);
    const char *type = json_is_object(r.root) ? get_string(&r, "model_type", NULL) : NULL;
    if (r.st == TSR_OK && type == NULL)
        r.st = tsr_error_set(TSR_ERR_FORMAT,
                             "%s has no \"model_type\"; is it a transformers "
                             "config.json?",
                             path);
    else if (r.st == TSR_OK && strcmp(type, "gpt2") == 0)
        *family = TSR_HF_GPT2;
    else if (r.st == TSR_OK && strcmp(type, "llama") == 0)
        *family = TSR_HF_LLAMA;
    else if (r.st == TSR_OK)
        r.st = tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: model_type \"%.64s\" is not one tessera converts (gpt2, "
                             "llama)",
                             path, type);
    if (r.st == TSR_OK && *family == TSR_HF_GPT2)
        read_gpt2(&r, cfg);
    else if (r.st == TSR_OK)
        read_llama(&r, cfg);
    json_decref(r.root);
    if (r.st != TSR_OK)
        return r.st;
    if (cfg->hidden_size % cfg->num_attention_heads != 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: the hidden size %d is not a multiple of the "
                             "%d attention heads",
                             path, cfg->hidden_size, cfg->num_attention_heads);
    if (cfg->num_attention_heads % tsr_config_num_query_groups(cfg) != 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s: the %d attention heads are not a multiple of "
                             "the %d key/value heads",
                             path, cfg->num_attention_heads, tsr_config_num_query_groups(cfg));
    cfg->model = TSR_PRESET_NONE;
    cfg->model_name = "gpt";
    return TSR_OK;
}

tsr_status tsr_hf_family_of(const tsr_config *cfg, tsr_hf_family *family)
{
    bool layernorm = cfg->normalization == TSR_NORM_LAYERNORM;
    bool learned = cfg->position_embedding_type == TSR_POS_LEARNED_ABSOLUTE;
    bool mha = tsr_config_num_query_groups(cfg) == cfg->num_attention_heads;
    if (layernorm && learned && !cfg->swiglu && !cfg->disable_bias_linear && mha) {
        *family = TSR_HF_GPT2;
        return TSR_OK;
    }
    if (!layernorm && cfg->position_embedding_type == TSR_POS_ROPE && cfg->swiglu &&
        cfg->disable_bias_linear) {
        *family = TSR_HF_LLAMA;
        return TSR_OK;
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "this model (%s, %s positions, %s, %s%s) is neither Hugging Face's "
                         "gpt2 (LayerNorm, learned positions, GELU, biases, one key/value head "
                         "per query head) nor its llama (RMSNorm, rotary positions, SwiGLU, no "
                         "biases): tessera cannot export it",
                         layernorm ? "LayerNorm" : "RMSNorm",
                         learned                                        ? "learned"
                         : cfg->position_embedding_type == TSR_POS_ROPE ? "rotary"
                                                                        : "no",
                         cfg->swiglu ? "SwiGLU" : "GELU",
                         cfg->disable_bias_linear ? "no biases" : "biases",
                         mha ? "" : ", grouped queries");
}

static json_t *gpt2_config(const tsr_config *cfg, int64_t vocab)
{
    int positions =
        cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings : cfg->seq_length;
    return json_pack(
        "{s:[s],s:s,s:I,s:i,s:i,s:i,s:i,s:i,s:s,s:f,s:f,s:f,s:f,s:f,s:b,s:s}", "architectures",
        "GPT2LMHeadModel", "model_type", "gpt2", "vocab_size", (json_int_t)vocab, "n_positions",
        positions, "n_embd", cfg->hidden_size, "n_layer", cfg->num_layers, "n_head",
        cfg->num_attention_heads, "n_inner", tsr_config_ffn_hidden_size(cfg), "activation_function",
        "gelu_new", "layer_norm_epsilon", cfg->norm_epsilon, "initializer_range",
        cfg->init_method_std, "resid_pdrop", cfg->hidden_dropout, "embd_pdrop", cfg->hidden_dropout,
        "attn_pdrop", cfg->attention_dropout, "tie_word_embeddings",
        !cfg->untie_embeddings_and_output_weights, "torch_dtype", "float32");
}

static json_t *llama_config(const tsr_config *cfg, int64_t vocab)
{
    int positions =
        cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings : cfg->seq_length;
    return json_pack(
        "{s:[s],s:s,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:i,s:f,s:f,s:n,s:b,s:b,s:f,"
        "s:f,s:b,s:s}",
        "architectures", "LlamaForCausalLM", "model_type", "llama", "vocab_size", (json_int_t)vocab,
        "hidden_size", cfg->hidden_size, "intermediate_size", tsr_config_ffn_hidden_size(cfg),
        "num_hidden_layers", cfg->num_layers, "num_attention_heads", cfg->num_attention_heads,
        "num_key_value_heads", tsr_config_num_query_groups(cfg), "head_dim",
        cfg->hidden_size / cfg->num_attention_heads, "hidden_act", "silu",
        "max_position_embeddings", positions, "rms_norm_eps", cfg->norm_epsilon, "rope_theta",
        cfg->rotary_base, "rope_scaling", "attention_bias", false, "mlp_bias", false,
        "initializer_range", cfg->init_method_std, "attention_dropout", cfg->attention_dropout,
        "tie_word_embeddings", !cfg->untie_embeddings_and_output_weights, "torch_dtype", "float32");
}

tsr_status tsr_hf_config_write(const char *path, const tsr_config *cfg, int64_t vocab,
                               tsr_hf_family family)
{
    json_t *root = family == TSR_HF_GPT2 ? gpt2_config(cfg, vocab) : llama_config(cfg, vocab);
    if (root == NULL)
        return tsr_error_set(TSR_ERR_INTERNAL, "cannot build %s", path);
    if (cfg->eod_token >= 0) {
        json_object_set_new(root, "bos_token_id", json_integer(cfg->eod_token));
        json_object_set_new(root, "eos_token_id", json_integer(cfg->eod_token));
    }
    int rc = json_dump_file(root, path, JSON_INDENT(2));
    json_decref(root);
    if (rc != 0)
        return tsr_error_set(TSR_ERR_IO, "cannot write %s", path);
    return TSR_OK;
}
