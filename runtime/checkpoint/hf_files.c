/*
 * hf_files.c - see hf_files.h.
 */
#include "hf_files.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SHARDS 4096

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

void tsr_hf_files_close(tsr_hf_files *f)
{
    for (size_t i = 0; i < f->count; i++)
        tsr_st_close(&f->files[i]);
    free(f->files);
    memset(f, 0, sizeof *f);
}

static tsr_status open_one(const char *path, tsr_hf_files *out)
{
    out->files = calloc(1, sizeof *out->files);
    if (out->files == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    tsr_status st = tsr_st_open(path, &out->files[0]);
    if (st == TSR_OK)
        out->count = 1;
    return st;
}

/* A shard's name must be a file of the directory itself. */
static bool plain_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static tsr_status open_shard(const char *dir, const char *index, const char *shard,
                             tsr_hf_files *out)
{
    for (size_t i = 0; i < out->count; i++) {
        const char *p = out->files[i].path, *base = strrchr(p, '/');
        if (strcmp(base != NULL ? base + 1 : p, shard) == 0)
            return TSR_OK;
    }
    if (!plain_name(shard))
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s maps a tensor to \"%.200s\", which is not a file name of the "
                             "model's directory",
                             index, shard);
    if (out->count == MAX_SHARDS)
        return tsr_error_set(TSR_ERR_FORMAT, "%s names more than %d shards", index, MAX_SHARDS);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, shard);
    tsr_st_file *grown = realloc(out->files, (out->count + 1) * sizeof *grown);
    if (grown == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    out->files = grown;
    tsr_status st = tsr_st_open(path, &out->files[out->count]);
    if (st == TSR_OK)
        out->count++;
    return st;
}

static tsr_status open_index(const char *dir, const char *index, tsr_hf_files *out)
{
    json_error_t err;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return tsr_error_set(TSR_ERR_FORMAT, "%s is not valid JSON: %s (line %d, column %d)", index,
                             err.text, err.line, err.column);
    json_t *map = json_object_get(root, "weight_map");
    tsr_status st = TSR_OK;
    if (!json_is_object(map) || json_object_size(map) == 0)
        st = tsr_error_set(TSR_ERR_FORMAT,
                           "%s has no \"weight_map\" object of tensor names "
                           "and shard files",
                           index);
    const char *name;
    json_t *file;
    json_object_foreach(map, name, file)
    {
        if (st != TSR_OK)
            break;
        if (!json_is_string(file)) {
            st = tsr_error_set(TSR_ERR_FORMAT, "%s: the shard of tensor %s is not a file name",
                               index, name);
            break;
        }
        st = open_shard(dir, index, json_string_value(file), out);
    }
    /* each tensor where the index says: a shard missing one is damaged */
    json_object_foreach(map, name, file)
    {
        if (st != TSR_OK)
            break;
        const char *shard = json_string_value(file);
        for (size_t i = 0; i < out->count; i++) {
            const char *p = out->files[i].path, *base = strrchr(p, '/');
            if (strcmp(base != NULL ? base + 1 : p, shard) == 0 &&
                tsr_st_find(&out->files[i], name) == NULL)
                st = tsr_error_set(TSR_ERR_FORMAT, "%s maps tensor %s to %s, which lacks it", index,
                                   name, out->files[i].path);
        }
    }
    json_decref(root);
    return st;
}

tsr_status tsr_hf_files_open(const char *dir, tsr_hf_files *out)
{
    memset(out, 0, sizeof *out);
    char single[4096], index[4096], bin[4096];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
    tsr_status st;
    if (exists(single))
        st = open_one(single, out);
    else if (exists(index))
        st = open_index(dir, index, out);
    else if (exists(bin))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "%s holds pytorch_model.bin but no model.safetensors: tessera reads "
                           "safetensors only (pickle files can run code); write them with "
                           "transformers' save_pretrained(dir, safe_serialization=True)",
                           dir);
    else
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "%s has config.json but neither model.safetensors nor "
                           "model.safetensors.index.json",
                           dir);
    if (st != TSR_OK)
        tsr_hf_files_close(out);
    return st;
}
