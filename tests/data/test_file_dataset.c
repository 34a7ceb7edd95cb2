/*
 * test_file_dataset.c - --data-path through tsr_dataset_open: .bin/.idx
 * prefixes, HDF5 token files (valid and hostile), weighted blends, and
 * the configuration errors a user can make.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/hdf5_tokens.h"
#include "data/indexed.h"
#include "harness.h"

static char dir[] = "/tmp/tsr_fileds_XXXXXX";
static char prefix_a[600], prefix_b[600], h5_a[600];

/* 40 documents of 3..22 tokens. Token i of document d is
 * base + d + 40 x (i % 2): it names its document, and its parity its
 * position. File A has base 0 (ids < 80), file B base 100. */
enum { DOCS = 40, SEQ = 16 };

static int doc_length(int d)
{
    return 3 + (d * 7) % 20;
}

static void write_corpus(const char *prefix, const char *h5, int base)
{
    int32_t *all = malloc(DOCS * 32 * sizeof *all);
    int64_t offsets[DOCS + 1] = {0};
    tsr_indexed_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_open(prefix, TSR_INDEXED_UINT16, &w), TSR_OK);
    for (int d = 0; d < DOCS; d++) {
        int32_t *doc = all + offsets[d];
        for (int i = 0; i < doc_length(d); i++)
            doc[i] = base + d + 40 * (i % 2);
        CU_ASSERT_EQUAL(tsr_indexed_writer_add(w, doc, doc_length(d)), TSR_OK);
        CU_ASSERT_EQUAL(tsr_indexed_writer_end_document(w), TSR_OK);
        offsets[d + 1] = offsets[d] + doc_length(d);
    }
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_finish(w), TSR_OK);
    if (h5 != NULL)
        CU_ASSERT_EQUAL_FATAL(tsr_hdf5_tokens_write(h5, all, offsets, DOCS, 200), TSR_OK);
    free(all);
}

static int setup(void)
{
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(prefix_a, sizeof prefix_a, "%s/a_text_document", dir);
    snprintf(prefix_b, sizeof prefix_b, "%s/b_text_document", dir);
    snprintf(h5_a, sizeof h5_a, "%s/a.h5", dir);
    return 0;
}

static void config(tsr_config *cfg, const char *path)
{
    tsr_config_defaults(cfg);
    cfg->data_path = path;
    cfg->vocab_size = 200;
    cfg->seq_length = SEQ;
    cfg->split = "80,10,10";
    cfg->seed = 5;
}

static void test_write_corpora(void)
{
    write_corpus(prefix_a, h5_a, 0);
    write_corpus(prefix_b, NULL, 100);
}

static void test_indexed_samples_and_mask(void)
{
    tsr_config cfg;
    config(&cfg, prefix_a);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    CU_ASSERT_EQUAL(ds->vocab_size, 200);
    CU_ASSERT_FALSE(ds->has_answers);
    int32_t tokens[2 * SEQ + 1], targets[2 * SEQ];
    float mask[2 * SEQ];
    for (tsr_split s = TSR_SPLIT_TRAIN; s <= TSR_SPLIT_TEST; s++) {
        CU_ASSERT_EQUAL(tsr_dataset_batch(ds, s, 3, 2, tokens, targets, mask), TSR_OK);
        for (int i = 0; i < 2 * SEQ; i++) {
            CU_ASSERT_EQUAL(mask[i], 1.0f);
            CU_ASSERT_TRUE(tokens[i] >= 0 && tokens[i] < 80);
        }
    }
    tsr_dataset_close(ds);
}

static void test_hdf5_serves_the_same_samples_as_indexed(void)
{
    tsr_config a, b;
    config(&a, prefix_a);
    config(&b, h5_a);
    tsr_dataset *da = NULL, *db = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&a, &da), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&b, &db), TSR_OK);
    for (tsr_split s = TSR_SPLIT_TRAIN; s <= TSR_SPLIT_TEST; s++)
        for (int64_t i = 0; i < 40; i += 3) {
            int32_t x[SEQ + 1], y[SEQ + 1];
            float m[SEQ];
            CU_ASSERT_EQUAL(da->ops->sample(da, s, i, x, m), TSR_OK);
            CU_ASSERT_EQUAL(db->ops->sample(db, s, i, y, m), TSR_OK);
            CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);
        }
    tsr_dataset_close(da);
    tsr_dataset_close(db);
}

static void test_splits_are_disjoint_documents(void)
{
    /* 80,10,10 of 40 documents: train 0..31, valid 32..35, test 36..39 */
    tsr_config cfg;
    config(&cfg, prefix_a);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    for (tsr_split s = TSR_SPLIT_TRAIN; s <= TSR_SPLIT_TEST; s++) {
        int lo = s == TSR_SPLIT_TRAIN ? 0 : s == TSR_SPLIT_VALID ? 32 : 36;
        int hi = s == TSR_SPLIT_TRAIN ? 32 : s == TSR_SPLIT_VALID ? 36 : 40;
        for (int64_t i = 0; i < 20; i++) {
            int32_t x[SEQ + 1];
            float m[SEQ];
            CU_ASSERT_EQUAL_FATAL(ds->ops->sample(ds, s, i, x, m), TSR_OK);
            for (int k = 0; k <= SEQ; k++) {
                int d = x[k] % 40;
                CU_ASSERT_TRUE(d >= lo && d < hi);
                /* within a document positions alternate in parity */
                if (k > 0 && x[k - 1] % 40 == d)
                    CU_ASSERT_NOT_EQUAL(x[k] / 40, x[k - 1] / 40);
            }
        }
    }
    tsr_dataset_close(ds);
}

static void test_weighted_blend_draws_by_weight(void)
{
    char path[2000];
    snprintf(path, sizeof path, "0.3 %s 0.7 %s", prefix_a, prefix_b);
    tsr_config cfg;
    config(&cfg, path);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    static const int from_b[10] = {1, 0, 1, 1, 0, 1, 1, 0, 1, 1}; /* see test_gpt_samples */
    for (int i = 0; i < 10; i++) {
        int32_t x[SEQ + 1];
        float m[SEQ];
        CU_ASSERT_EQUAL_FATAL(ds->ops->sample(ds, TSR_SPLIT_TRAIN, i, x, m), TSR_OK);
        for (int k = 0; k <= SEQ; k++)
            CU_ASSERT_EQUAL(x[k] >= 100, from_b[i]);
    }
    tsr_dataset_close(ds);
}

static void expect_open_error(const tsr_config *cfg, tsr_status want, const char *needle)
{
    tsr_dataset *ds = NULL;
    tsr_status st = tsr_dataset_open(cfg, &ds);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(ds);
    if (needle != NULL && strstr(tsr_last_error(), needle) == NULL) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, tsr_last_error());
        CU_FAIL("message does not say what is wrong");
    }
    tsr_dataset_close(ds);
}

static void test_configuration_errors(void)
{
    tsr_config cfg;
    config(&cfg, prefix_a);
    cfg.vocab_size = 0;
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "give --vocab-size");
    cfg.vocab_size = 50;
    expect_open_error(&cfg, TSR_ERR_FORMAT, "a_text_document.bin: token");
    config(&cfg, prefix_a);
    cfg.split = "1,x";
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "--split");
    config(&cfg, prefix_a);
    cfg.seq_length = 2048; /* more than the whole corpus */
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "split 'train'");
    config(&cfg, prefix_a);
    cfg.split = "100,0,0";
    cfg.eval_interval = 10; /* validation asked for, but the valid split is empty */
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "split 'valid'");
    config(&cfg, "/nonexistent/x_text_document");
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "PREFIX.idx");
    config(&cfg, "/nonexistent/x.h5");
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "no such file");
    config(&cfg, "0.5 a 0.5");
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "WEIGHT PREFIX");
    config(&cfg, "synthetic:nope");
    expect_open_error(&cfg, TSR_ERR_INVALID_ARG, "synthetic");
}

static void test_empty_test_split_fails_only_when_read(void)
{
    tsr_config cfg;
    config(&cfg, prefix_a);
    cfg.split = "90,10,0";
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    int32_t x[SEQ + 1];
    float m[SEQ];
    CU_ASSERT_EQUAL(ds->ops->sample(ds, TSR_SPLIT_TEST, 0, x, m), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "split 'test'"));
    CU_ASSERT_EQUAL(ds->ops->sample(ds, TSR_SPLIT_VALID, 0, x, m), TSR_OK);
    tsr_dataset_close(ds);
}

/* Writes an HDF5 file with the given datasets (NULL: left out). */
static void write_h5(const char *path, const int64_t *tokens, hsize_t ntok, const int64_t *offs,
                     hsize_t noff, int token_rank2)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_TRUE_FATAL(f >= 0);
    if (tokens != NULL) {
        hsize_t dims[2] = {ntok, 1};
        hid_t s = H5Screate_simple(token_rank2 ? 2 : 1, dims, NULL);
        hid_t d = H5Dcreate2(f, "tokens", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens);
        H5Dclose(d);
        H5Sclose(s);
    }
    if (offs != NULL) {
        hid_t s = H5Screate_simple(1, &noff, NULL);
        hid_t d = H5Dcreate2(f, "document_offsets", H5T_STD_I64LE, s, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offs);
        H5Dclose(d);
        H5Sclose(s);
    }
    H5Fclose(f);
}

static void expect_h5_error(const char *path, tsr_status want, const char *needle)
{
    tsr_token_source *src = NULL;
    CU_ASSERT_EQUAL(tsr_hdf5_tokens_open(path, 100, &src), want);
    CU_ASSERT_PTR_NULL(src);
    if (strstr(tsr_last_error(), needle) == NULL) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, tsr_last_error());
        CU_FAIL("message does not say what is wrong");
    }
}

static void test_hostile_hdf5_files(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/bad.h5", dir);
    int64_t tok[6] = {1, 2, 3, 4, 5, 6};
    int64_t good[3] = {0, 2, 6}, back[3] = {0, 4, 2}, short_end[3] = {0, 2, 5},
            nonzero[3] = {1, 2, 6};
    write_h5(path, tok, 6, good, 3, 0);
    tsr_token_source *src = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_hdf5_tokens_open(path, 100, &src), TSR_OK);
    CU_ASSERT_EQUAL(src->documents, 2);
    int32_t got[4];
    CU_ASSERT_EQUAL(src->ops->read(src, 1, 1, 3, got), TSR_OK);
    CU_ASSERT_EQUAL(got[0], 4);
    CU_ASSERT_EQUAL(got[2], 6);
    CU_ASSERT_EQUAL(src->ops->read(src, 1, 2, 3, got), TSR_ERR_INTERNAL);
    tsr_token_source_destroy(src);
    write_h5(path, tok, 6, back, 3, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "must not decrease");
    write_h5(path, tok, 6, short_end, 3, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "last document offset is 5");
    write_h5(path, tok, 6, nonzero, 3, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "must be 0");
    write_h5(path, tok, 6, NULL, 0, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "no dataset /document_offsets");
    write_h5(path, NULL, 0, good, 3, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "no dataset /tokens");
    write_h5(path, tok, 6, good, 3, 1);
    expect_h5_error(path, TSR_ERR_FORMAT, "one-dimensional");
    write_h5(path, tok, 6, good, 0, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "empty");
    tok[3] = 100;
    write_h5(path, tok, 6, good, 3, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "token 100 at /tokens[3]");
    tok[3] = -2;
    write_h5(path, tok, 6, good, 3, 0);
    expect_h5_error(path, TSR_ERR_FORMAT, "token -2");
    FILE *f = fopen(path, "wb");
    fputs("not an hdf5 file at all", f);
    fclose(f);
    expect_h5_error(path, TSR_ERR_FORMAT, "not an HDF5 file");
    remove(path);
}

/* A loss-mask sidecar for file A: token i of each document is trained on
 * when i is odd, i.e. exactly the tokens >= 40 (see write_corpus); `bad`
 * writes another sidecar: one document a token short, or a value of 2. */
static void write_mask(const char *prefix, int bad)
{
    char path[700];
    snprintf(path, sizeof path, "%s_lossmask", prefix);
    tsr_indexed_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_open(path, TSR_INDEXED_UINT8, &w), TSR_OK);
    for (int d = 0; d < DOCS; d++) {
        int32_t bits[32];
        int n = doc_length(d) - (bad == 1 && d == 7);
        for (int i = 0; i < n; i++)
            bits[i] = bad == 2 && d == 3 && i == 1 ? 2 : i % 2;
        CU_ASSERT_EQUAL(tsr_indexed_writer_add(w, bits, n), TSR_OK);
        CU_ASSERT_EQUAL(tsr_indexed_writer_end_document(w), TSR_OK);
    }
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_finish(w), TSR_OK);
}

static void remove_mask(const char *prefix)
{
    char path[700];
    snprintf(path, sizeof path, "%s_lossmask.bin", prefix);
    CU_ASSERT_EQUAL(remove(path), 0);
    snprintf(path, sizeof path, "%s_lossmask.idx", prefix);
    CU_ASSERT_EQUAL(remove(path), 0);
}

/* Wherever packing and shuffling put a token, its mask comes along:
 * target i counts exactly when it is a trained token. */
static void test_loss_mask_sidecar(void)
{
    write_mask(prefix_a, 0);
    tsr_config cfg;
    config(&cfg, prefix_a);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&cfg, &ds), TSR_OK);
    int32_t tokens[4 * SEQ + 1], targets[4 * SEQ];
    float mask[4 * SEQ];
    int wrong = 0, trained = 0;
    for (int64_t first = 0; first < 40; first += 4) {
        CU_ASSERT_EQUAL_FATAL(tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, first, 4, tokens, targets,
                                                mask),
                              TSR_OK);
        for (int i = 0; i < 4 * SEQ; i++) {
            wrong += mask[i] != (targets[i] >= 40 ? 1.0f : 0.0f);
            trained += mask[i] == 1.0f;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(trained > 40 * SEQ / 4 && trained < 40 * SEQ * 3 / 4); /* both kinds occur */
    tsr_dataset_close(ds);
    for (int bad = 1; bad <= 2; bad++) {
        write_mask(prefix_a, bad);
        CU_ASSERT_EQUAL(tsr_dataset_open(&cfg, &ds), TSR_ERR_FORMAT);
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "a_text_document_lossmask"));
        CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), bad == 1 ? "sequence 7 has" : "token"));
    }
    remove_mask(prefix_a);
}

static void test_cleanup(void)
{
    static const char *const names[] = {"a_text_document.bin", "a_text_document.idx",
                                        "b_text_document.bin", "b_text_document.idx", "a.h5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CU_ASSERT_EQUAL(remove(path), 0);
    }
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

int main(void)
{
    if (setup() != 0)
        return 1;
    static const tsr_test_case cases[] = {
        TSR_TEST(test_write_corpora),
        TSR_TEST(test_indexed_samples_and_mask),
        TSR_TEST(test_hdf5_serves_the_same_samples_as_indexed),
        TSR_TEST(test_splits_are_disjoint_documents),
        TSR_TEST(test_weighted_blend_draws_by_weight),
        TSR_TEST(test_configuration_errors),
        TSR_TEST(test_empty_test_split_fails_only_when_read),
        TSR_TEST(test_hostile_hdf5_files),
        TSR_TEST(test_loss_mask_sidecar),
        TSR_TEST(test_cleanup),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("file datasets", cases)};
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
