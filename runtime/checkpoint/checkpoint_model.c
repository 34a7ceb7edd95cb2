/*
 * checkpoint_model.c - the model a checkpoint file was written for, read
 * back into a config (tsr_checkpoint_read_model): for programs that act on
 * a checkpoint without model flags of their own, such as `tessera convert`.
 */
#include <stdio.h>
#include <string.h>

#include "checkpoint_internal.h"

/* 0 read, -1 absent or unreadable */
static int read_attr(hid_t file, const char *name, hid_t type, void *value)
{
    if (H5Aexists(file, name) <= 0)
        return -1;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    herr_t err = attr < 0 ? -1 : H5Aread(attr, type, value);
    if (attr >= 0)
        H5Aclose(attr);
    return err < 0 ? -1 : 0;
}

/* Rows of /model/<name>; 0 when the file has no such tensor. */
static int64_t tensor_rows(hid_t file, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/model/%s", name);
    if (H5Lexists(file, "/model", H5P_DEFAULT) <= 0 || H5Lexists(file, path, H5P_DEFAULT) <= 0)
        return 0;
    hid_t set = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t space = set < 0 ? -1 : H5Dget_space(set);
    hsize_t dims[2] = {0, 0};
    if (space >= 0 &&
        (H5Sget_simple_extent_ndims(space) < 1 || H5Sget_simple_extent_ndims(space) > 2 ||
         H5Sget_simple_extent_dims(space, dims, NULL) < 0))
        dims[0] = 0;
    if (space >= 0)
        H5Sclose(space);
    if (set >= 0)
        H5Dclose(set);
    return (int64_t)dims[0];
}

static tsr_status read_into(hid_t file, const char *path, tsr_config *cfg)
{
    struct {
        const char *name;
        int *value;
        int64_t lo;
    } ints[] = {{"num_layers", &cfg->num_layers, 1},
                {"hidden_size", &cfg->hidden_size, 1},
                {"num_attention_heads", &cfg->num_attention_heads, 1},
                {"num_query_groups", &cfg->num_query_groups, 1},
                {"ffn_hidden_size", &cfg->ffn_hidden_size, 1},
                {"seq_length", &cfg->seq_length, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = 0;
        if (read_attr(file, ints[i].name, H5T_NATIVE_INT64, &v) != 0 || v < ints[i].lo ||
            v > (1 << 24))
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "checkpoint %s has no readable %s from 1 to 2^24 (not a "
                                 "tessera checkpoint, or damaged)",
                                 path, ints[i].name);
        *ints[i].value = (int)v;
    }
    struct {
        const char *name;
        int64_t value;
    } flags[] = {{"normalization_rmsnorm", 0},
                 {"position_embedding_rope", 0},
                 {"swiglu", 0},
                 {"disable_bias_linear", 0},
                 {"untie_embeddings_and_output_weights", 0}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (read_attr(file, flags[i].name, H5T_NATIVE_INT64, &flags[i].value) != 0 ||
            (flags[i].value != 0 && flags[i].value != 1))
            return tsr_error_set(TSR_ERR_FORMAT, "checkpoint %s has no readable %s (0 or 1)", path,
                                 flags[i].name);
    cfg->normalization = flags[0].value ? TSR_NORM_RMSNORM : TSR_NORM_LAYERNORM;
    cfg->position_embedding_type = flags[1].value ? TSR_POS_ROPE : TSR_POS_LEARNED_ABSOLUTE;
    cfg->swiglu = flags[2].value;
    cfg->disable_bias_linear = flags[3].value;
    cfg->untie_embeddings_and_output_weights = flags[4].value;
    cfg->group_query_attention = cfg->num_query_groups != cfg->num_attention_heads;
    double eps = 0.0, base = 0.0;
    if (read_attr(file, "norm_epsilon", H5T_NATIVE_DOUBLE, &eps) != 0 || !(eps > 0.0) ||
        read_attr(file, "rotary_base", H5T_NATIVE_DOUBLE, &base) != 0 || !(base > 0.0))
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s has no readable norm_epsilon and rotary_base", path);
    cfg->norm_epsilon = eps;
    cfg->rotary_base = base;
    int64_t vocab = tensor_rows(file, "embedding.word_embeddings.weight");
    if (vocab < 1 || vocab > (1 << 30))
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s has no tensor model/embedding.word_embeddings.weight "
                             "to take the vocabulary from",
                             path);
    cfg->vocab_size = (int)vocab;
    int64_t positions = tensor_rows(file, "embedding.position_embeddings.weight");
    cfg->max_position_embeddings = positions > 0 && positions <= (1 << 24) ? (int)positions : 0;
    cfg->model = TSR_PRESET_NONE;
    cfg->model_name = "gpt";
    int64_t seed = 0; /* of its data order: held-out problems are the run's */
    if (read_attr(file, "seed", H5T_NATIVE_INT64, &seed) == 0 && seed >= 0)
        cfg->seed = seed;
    /* the dataset it trained on (informative: a tokenizer's hint) */
    static char data_path[1024];
    if (tsr_checkpoint_read_string(file, "data_path", data_path, sizeof data_path) == 0)
        cfg->data_path = data_path;
    /* the attention it trained with (absent in older files: causal) */
    static char pattern[256];
    if (tsr_checkpoint_read_string(file, "attention_pattern", pattern, sizeof pattern) == 0)
        cfg->attention_pattern = pattern;
    struct {
        const char *name;
        int *value;
    } attention[] = {{"window_size", &cfg->window_size},
                     {"sparse_block", &cfg->sparse_block},
                     {"sparse_stride", &cfg->sparse_stride}};
    for (size_t i = 0; i < sizeof attention / sizeof attention[0]; i++) {
        int64_t v = 0;
        if (read_attr(file, attention[i].name, H5T_NATIVE_INT64, &v) == 0 && v >= 0 &&
            v <= (1 << 24))
            *attention[i].value = (int)v;
    }
    int64_t sparse = 0, prefix = 0;
    if (read_attr(file, "sparse_attention", H5T_NATIVE_INT64, &sparse) == 0 && sparse >= 0 &&
        sparse <= TSR_SPARSE_STRIDED)
        cfg->sparse_attention = (tsr_sparse_attention)sparse;
    if (read_attr(file, "prefix_lm", H5T_NATIVE_INT64, &prefix) == 0)
        cfg->prefix_lm = prefix == 1;
    /* an adapter run's checkpoint: the adapters it holds */
    int64_t rank = 0;
    static char targets[32];
    if (read_attr(file, "lora_rank", H5T_NATIVE_INT64, &rank) == 0 && rank > 0) {
        double alpha = 0.0, dropout = 0.0;
        bool ok = rank <= (1 << 16) &&
                  read_attr(file, "lora_alpha", H5T_NATIVE_DOUBLE, &alpha) == 0 && alpha > 0.0 &&
                  read_attr(file, "lora_dropout", H5T_NATIVE_DOUBLE, &dropout) == 0 &&
                  tsr_checkpoint_read_string(file, "lora_target", targets, sizeof targets) == 0;
        if (!ok)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "checkpoint %s has lora_rank %lld but no readable lora_alpha, "
                                 "lora_dropout and lora_target (damaged?)",
                                 path, (long long)rank);
        cfg->lora_rank = (int)rank;
        cfg->lora_alpha = alpha;
        cfg->lora_dropout = dropout;
        cfg->lora_target = targets;
    }
    return TSR_OK;
}

tsr_status tsr_checkpoint_read_model(const char *path, tsr_config *cfg)
{
    tsr_status st = TSR_OK;
    H5E_BEGIN_TRY
    {
        hid_t file = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
        if (file < 0)
            st = tsr_error_set(TSR_ERR_FORMAT,
                               "cannot open checkpoint %s (missing, truncated "
                               "or not HDF5)",
                               path);
        else
            st = read_into(file, path, cfg);
        if (file >= 0)
            H5Fclose(file);
    }
    H5E_END_TRY;
    return st;
}
