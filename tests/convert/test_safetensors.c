/*
 * test_safetensors.c - hostile safetensors files, config.json files and
 * shard indexes: each is refused with a message naming what is wrong and
 * a status that exits 2 (TSR_ERR_FORMAT or TSR_ERR_INVALID_ARG), and the
 * half-precision conversions are exact.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/hf_files.h"
#include "harness.h"
#include "hf_test_models.h"
#include "tessera/log.h"

/* A whole file: 8-byte length, header, data. */
static size_t make_file(uint8_t *buf, const char *header, size_t data_bytes)
{
    size_t n = strlen(header);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, 0, data_bytes);
    return 8 + n + data_bytes;
}

static void expect_refused(const char *header, size_t data_bytes, const char *words)
{
    static uint8_t buf[1 << 16];
    size_t len = make_file(buf, header, data_bytes);
    tsr_st_file f;
    tsr_status st = tsr_st_parse_bytes(buf, len, "x.safetensors", &f);
    CU_ASSERT_EQUAL(tsr_status_exit_code(st), 2);
    if (strstr(tsr_last_error(), words) == NULL)
        fprintf(stderr, "\nmessage \"%s\" lacks \"%s\"\n", tsr_last_error(), words);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), words));
    CU_ASSERT_EQUAL(f.count, 0);
}

static void test_valid_header_parses(void)
{
    static uint8_t buf[256];
    size_t len = make_file(buf,
                           "{\"__metadata__\":{\"format\":\"pt\"},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                           "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                           "\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[32,32]}}",
                           32);
    tsr_st_file f;
    CU_ASSERT_EQUAL_FATAL(tsr_st_parse_bytes(buf, len, "ok", &f), TSR_OK);
    CU_ASSERT_EQUAL(f.count, 3);
    const tsr_st_tensor *b = tsr_st_find(&f, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->dtype, TSR_ST_BF16);
    CU_ASSERT_EQUAL(b->numel, 4);
    CU_ASSERT_EQUAL(b->begin, 24);
    CU_ASSERT_PTR_NULL(tsr_st_find(&f, "__metadata__"));
    tsr_st_close(&f);
    /* the same bytes as a file, read back through pread and converted */
    const uint8_t bf16[8] = {0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40, 0x00, 0x00};
    memcpy(buf + len - 8, bf16, 8);
    char path[] = "/tmp/tsr_st_file_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0 && write(fd, buf, len) == (ssize_t)len);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(tsr_st_open(path, &f), TSR_OK);
    float got[4] = {0};
    CU_ASSERT_EQUAL(tsr_st_read_f32(&f, tsr_st_find(&f, "b"), got), TSR_OK);
    CU_ASSERT(got[0] == 1.0f && got[1] == -2.0f && got[2] == 3.140625f && got[3] == 0.0f);
    tsr_st_close(&f);
    CU_ASSERT_EQUAL(tsr_st_open("/nonexistent/x.safetensors", &f), TSR_ERR_INVALID_ARG);
    unlink(path);
}

static void test_header_length_past_the_file(void)
{
    uint8_t buf[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    tsr_st_file f;
    CU_ASSERT_EQUAL(tsr_st_parse_bytes(buf, 10, "x", &f), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "header length is 65535"));
    CU_ASSERT_EQUAL(tsr_st_parse_bytes(buf, 5, "x", &f), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "fewer than"));
}

static void test_malformed_headers(void)
{
    expect_refused("{\"a\":", 0, "not valid JSON");
    expect_refused("[1,2]", 0, "not a JSON object");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "not valid JSON"); /* duplicate key */
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks a string dtype");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                   "shape holds");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                   "shape holds");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                   "not two non-negative");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4194304,4194304,4194304],"
                   "\"data_offsets\":[0,4]}}",
                   4, "too large");
    expect_refused("{\"__metadata__\":[],\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                   "\"data_offsets\":[0,4]}}",
                   4, "__metadata__");
}

static void test_ranges_out_of_bounds_short_and_overlapping(void)
{
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                   "outside the 8 bytes");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,4]}}", 16,
                   "outside");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16,
                   "holds 12 bytes where its shape and dtype need 16");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                   24, "overlap");
}

static void test_wrong_dtype(void)
{
    expect_refused("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                   "dtype I64");
    expect_refused("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                   "F32, F16 and BF16");
}

static void test_half_precision_is_exact(void)
{
    const uint8_t f16[] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c,
                           0xff, 0x7b, 0x00, 0x80, 0x00, 0x7e, 0xff, 0x03};
    float out[8];
    tsr_st_to_f32(TSR_ST_F16, f16, 8, out);
    CU_ASSERT_EQUAL(out[0], 1.0f);
    CU_ASSERT_EQUAL(out[1], -2.0f);
    CU_ASSERT_EQUAL(out[2], ldexpf(1.0f, -24)); /* smallest subnormal */
    CU_ASSERT(isinf(out[3]) && out[3] > 0);
    CU_ASSERT_EQUAL(out[4], 65504.0f); /* largest normal */
    CU_ASSERT(out[5] == 0.0f && signbit(out[5]));
    CU_ASSERT(isnan(out[6]));
    CU_ASSERT_EQUAL(out[7], ldexpf(1023.0f, -24)); /* largest subnormal */
    const uint8_t bf16[] = {0x80, 0x3f, 0x49, 0x40, 0x80, 0xff};
    tsr_st_to_f32(TSR_ST_BF16, bf16, 3, out);
    CU_ASSERT_EQUAL(out[0], 1.0f);
    CU_ASSERT_EQUAL(out[1], 3.140625f);
    CU_ASSERT(isinf(out[2]) && out[2] < 0);
}

/* The exported test model's file, rewritten without tensor `drop` (NULL:
 * all) into dir/name; returns the tensors' count. */
static size_t rewrite(const char *src, const char *dir, const char *name, const char *drop,
                      size_t first, size_t last)
{
    tsr_st_file f;
    CU_ASSERT_EQUAL_FATAL(tsr_st_open(src, &f), TSR_OK);
    tsr_st_out *out = calloc(f.count, sizeof *out);
    size_t n = 0;
    for (size_t i = first; i < f.count && i < last; i++) {
        const tsr_st_tensor *t = &f.tensors[i];
        if (drop != NULL && strcmp(t->name, drop) == 0)
            continue;
        float *data = malloc((size_t)t->numel * sizeof(float) + 4);
        CU_ASSERT_EQUAL_FATAL(tsr_st_read_f32(&f, t, data), TSR_OK);
        out[n++] =
            (tsr_st_out){t->name, t->ndim, {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}, data};
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CU_ASSERT_EQUAL(tsr_st_write(path, out, n), TSR_OK);
    for (size_t i = 0; i < n; i++)
        free((void *)out[i].data);
    free(out);
    size_t count = f.count;
    tsr_st_close(&f);
    return count;
}

typedef struct exported {
    hf_test_model m;
    char dir[64], file[4096];
} exported;

static void export_llama(exported *e)
{
    CU_ASSERT_EQUAL_FATAL(hf_test_model_build("llama", true, &e->m), TSR_OK);
    snprintf(e->dir, sizeof e->dir, "/tmp/tsr_st_XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(e->dir));
    snprintf(e->file, sizeof e->file, "%s/full.safetensors", e->dir);
    CU_ASSERT_EQUAL_FATAL(
        tsr_hf_export(&e->m.cfg, e->m.family, e->m.views, e->m.view_count, e->file), TSR_OK);
}

static void cleanup(exported *e, const char *const *names)
{
    char path[4096];
    for (; *names != NULL; names++) {
        snprintf(path, sizeof path, "%s/%s", e->dir, *names);
        unlink(path);
    }
    unlink(e->file);
    rmdir(e->dir);
    hf_test_model_free(&e->m);
}

static tsr_status check_file(const exported *e, const tsr_config *cfg, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", e->dir, name);
    tsr_st_file f;
    tsr_status st = tsr_st_open(path, &f);
    if (st == TSR_OK)
        st = tsr_hf_check(cfg, e->m.family, &f, 1);
    tsr_st_close(&f);
    return st;
}

static void test_missing_tensor_and_disagreeing_config(void)
{
    exported e;
    export_llama(&e);
    rewrite(e.file, e.dir, "missing.safetensors", "model.layers.1.mlp.up_proj.weight", 0, 1000);
    CU_ASSERT_EQUAL(check_file(&e, &e.m.cfg, "missing.safetensors"), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "lacks tensor "
                                                    "model.layers.1.mlp.up_proj.weight"));
    tsr_config other = e.m.cfg;
    other.ffn_hidden_size = 80;
    CU_ASSERT_EQUAL(check_file(&e, &other, "missing.safetensors"), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "disagree"));
    other = e.m.cfg;
    other.num_layers = 1; /* the file has a layer more */
    rewrite(e.file, e.dir, "all.safetensors", NULL, 0, 1000);
    CU_ASSERT_EQUAL(check_file(&e, &other, "all.safetensors"), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "has no place for"));
    CU_ASSERT_EQUAL(check_file(&e, &e.m.cfg, "all.safetensors"), TSR_OK);
    const char *names[] = {"missing.safetensors", "all.safetensors", NULL};
    cleanup(&e, names);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_sharded_index(void)
{
    exported e;
    export_llama(&e);
    size_t count = rewrite(e.file, e.dir, "model-00001-of-00002.safetensors", NULL, 0, 5);
    rewrite(e.file, e.dir, "model-00002-of-00002.safetensors", NULL, 5, 1000);
    /* the index maps every tensor; build it from the two shards */
    char *index = malloc(1 << 16);
    size_t used = (size_t)snprintf(index, 1 << 16, "{\"metadata\":{},\"weight_map\":{");
    tsr_st_file f;
    CU_ASSERT_EQUAL_FATAL(tsr_st_open(e.file, &f), TSR_OK);
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(index + used, (1 << 16) - used,
                                 "%s\"%s\":\"model-0000%d-of-"
                                 "00002.safetensors\"",
                                 i ? "," : "", f.tensors[i].name, i < 5 ? 1 : 2);
    snprintf(index + used, (1 << 16) - used, "}}");
    write_text(e.dir, "model.safetensors.index.json", index);
    tsr_hf_files files;
    CU_ASSERT_EQUAL_FATAL(tsr_hf_files_open(e.dir, &files), TSR_OK);
    CU_ASSERT_EQUAL(files.count, 2);
    CU_ASSERT_EQUAL(tsr_hf_check(&e.m.cfg, e.m.family, files.files, files.count), TSR_OK);
    tsr_hf_files_close(&files);
    /* a tensor mapped to the wrong shard */
    char *wrong = strdup(index);
    char *at = strstr(wrong, "model-00001");
    at[10] = '2';
    write_text(e.dir, "model.safetensors.index.json", wrong);
    CU_ASSERT_EQUAL(tsr_hf_files_open(e.dir, &files), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "which lacks it"));
    /* a shard outside the directory */
    write_text(e.dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"../etc/passwd\"}}");
    CU_ASSERT_EQUAL(tsr_hf_files_open(e.dir, &files), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "not a file name"));
    write_text(e.dir, "model.safetensors.index.json", "{\"weight_map\":{}}");
    CU_ASSERT_EQUAL(tsr_hf_files_open(e.dir, &files), TSR_ERR_FORMAT);
    free(wrong);
    free(index);
    tsr_st_close(&f);
    const char *names[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json", NULL};
    cleanup(&e, names);
}

static tsr_status read_config(const char *text, tsr_config *cfg)
{
    char dir[] = "/tmp/tsr_cfg_XXXXXX", path[64];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    write_text(dir, "config.json", text);
    snprintf(path, sizeof path, "%s/config.json", dir);
    tsr_config_defaults(cfg);
    tsr_hf_family family;
    tsr_status st = tsr_hf_config_read(path, cfg, &family);
    unlink(path);
    rmdir(dir);
    return st;
}

static void expect_config_refused(const char *text, const char *words)
{
    tsr_config cfg;
    tsr_status st = read_config(text, &cfg);
    CU_ASSERT_EQUAL(tsr_status_exit_code(st), 2);
    if (strstr(tsr_last_error(), words) == NULL)
        fprintf(stderr, "\nmessage \"%s\" lacks \"%s\"\n", tsr_last_error(), words);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), words));
}

static void test_config_json(void)
{
    tsr_config cfg;
    CU_ASSERT_EQUAL_FATAL(read_config("{\"model_type\":\"llama\",\"hidden_size\":64,"
                                      "\"intermediate_size\":96,\"num_hidden_layers\":3,"
                                      "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                                      "\"vocab_size\":50,\"rope_theta\":500000.0,"
                                      "\"rms_norm_eps\":1e-5,\"rope_scaling\":null}",
                                      &cfg),
                          TSR_OK);
    CU_ASSERT_EQUAL(cfg.num_layers, 3);
    CU_ASSERT_EQUAL(cfg.num_query_groups, 2);
    CU_ASSERT_EQUAL(cfg.rotary_base, 500000.0);
    CU_ASSERT(cfg.swiglu && cfg.disable_bias_linear && cfg.untie_embeddings_and_output_weights);
    CU_ASSERT_EQUAL_FATAL(read_config("{\"model_type\":\"gpt2\",\"n_layer\":2}", &cfg), TSR_OK);
    CU_ASSERT_EQUAL(cfg.hidden_size, 768);
    CU_ASSERT_EQUAL(cfg.ffn_hidden_size, 3072);
    CU_ASSERT(!cfg.untie_embeddings_and_output_weights);
    expect_config_refused("{\"model_type\":", "not valid JSON");
    expect_config_refused("{\"n_layer\":2}", "no \"model_type\"");
    expect_config_refused("{\"model_type\":\"bert\"}", "not one tessera converts");
    expect_config_refused("{\"model_type\":\"gpt2\",\"n_layer\":-2}", "\"n_layer\" must be");
    expect_config_refused("{\"model_type\":\"gpt2\",\"n_embd\":\"big\"}", "\"n_embd\" must be");
    expect_config_refused("{\"model_type\":\"gpt2\",\"activation_function\":\"relu\"}",
                          "activation_function");
    expect_config_refused("{\"model_type\":\"gpt2\",\"n_embd\":100,\"n_head\":3}",
                          "not a multiple");
    expect_config_refused("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\"}}",
                          "rope_scaling");
    expect_config_refused("{\"model_type\":\"llama\",\"attention_bias\":true}", "attention_bias");
    expect_config_refused("{\"model_type\":\"llama\",\"num_attention_heads\":32,"
                          "\"num_key_value_heads\":5}",
                          "key/value heads");
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_valid_header_parses),
    TSR_TEST(test_header_length_past_the_file),
    TSR_TEST(test_malformed_headers),
    TSR_TEST(test_ranges_out_of_bounds_short_and_overlapping),
    TSR_TEST(test_wrong_dtype),
    TSR_TEST(test_half_precision_is_exact),
    TSR_TEST(test_missing_tensor_and_disagreeing_config),
    TSR_TEST(test_sharded_index),
    TSR_TEST(test_config_json),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("safetensors", cases)};
    return tsr_test_main(suites, 1);
}
