/*
 * test_indexed.c - the MMIDIDX reader and writer against files written by
 * an independent implementation of Megatron's writer (make_fixtures.py),
 * and every malformation a hostile .idx/.bin can carry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/indexed.h"
#include "fixtures/expected.h"
#include "harness.h"

#define NFIX (sizeof fixture_names / sizeof fixture_names[0])
#define NSEQ ((int)(sizeof fixture_lengths / sizeof fixture_lengths[0]))

static void fixture_path(char *out, size_t n, const char *name, const char *ext)
{
    snprintf(out, n, "%s/%s%s", TSR_DATA_FIXTURES, name, ext);
}

static void check_fixture_contents(tsr_indexed *idx)
{
    CU_ASSERT_EQUAL(tsr_indexed_sequences(idx), NSEQ);
    CU_ASSERT_EQUAL(tsr_indexed_documents(idx), 4);
    for (int d = 0; d <= 4; d++)
        CU_ASSERT_EQUAL(tsr_indexed_document_start(idx, d), fixture_doc_idx[d]);
    CU_ASSERT_EQUAL(tsr_indexed_total_tokens(idx), 11);
    int at = 0;
    for (int s = 0; s < NSEQ; s++) {
        CU_ASSERT_EQUAL(tsr_indexed_length(idx, s), fixture_lengths[s]);
        int32_t got[8] = {0};
        CU_ASSERT_EQUAL(tsr_indexed_read(idx, s, 0, fixture_lengths[s], got), TSR_OK);
        for (int i = 0; i < fixture_lengths[s]; i++)
            CU_ASSERT_EQUAL(got[i], fixture_tokens[at + i]);
        at += fixture_lengths[s];
    }
    int32_t mid[2];
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, 4, 2, 2, mid), TSR_OK); /* an inner slice */
    CU_ASSERT_EQUAL(mid[0], 9);
    CU_ASSERT_EQUAL(mid[1], 1);
}

static void test_reads_every_dtype_of_megatron_files(void)
{
    for (size_t f = 0; f < NFIX; f++) {
        char prefix[512];
        fixture_path(prefix, sizeof prefix, fixture_names[f], "");
        tsr_indexed *idx = NULL;
        tsr_status st = tsr_indexed_open(prefix, 121, &idx);
        if (st != TSR_OK)
            fprintf(stderr, "%s: %s\n", fixture_names[f], tsr_last_error());
        CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
        CU_ASSERT_EQUAL(tsr_indexed_dtype_code(idx), fixture_codes[f]);
        check_fixture_contents(idx);
        tsr_indexed_close(idx);
    }
}

static void test_writer_matches_megatron_bytes(void)
{
    char dir[] = "/tmp/tsr_indexed_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    for (int code = 1; code <= 8; code++) {
        char prefix[512], mine[600], theirs[600];
        snprintf(prefix, sizeof prefix, "%s/w%d", dir, code);
        tsr_indexed_writer *w = NULL;
        CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_open(prefix, (tsr_indexed_dtype)code, &w),
                              TSR_OK);
        int at = 0, seq = 0;
        for (int d = 1; d <= 4; d++) {
            for (; seq < fixture_doc_idx[d]; seq++) {
                CU_ASSERT_EQUAL(tsr_indexed_writer_add(w, fixture_tokens + at,
                                                       fixture_lengths[seq]),
                                TSR_OK);
                at += fixture_lengths[seq];
            }
            CU_ASSERT_EQUAL(tsr_indexed_writer_end_document(w), TSR_OK);
        }
        CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_finish(w), TSR_OK);
        for (int e = 0; e < 2; e++) {
            const char *ext = e ? ".idx" : ".bin";
            char name[64];
            snprintf(name, sizeof name, "megatron_code%d", code);
            snprintf(mine, sizeof mine, "%s%s", prefix, ext);
            fixture_path(theirs, sizeof theirs, name, ext);
            size_t n1 = 0, n2 = 0;
            char *a = tsr_test_read_file(mine, &n1), *b = tsr_test_read_file(theirs, &n2);
            CU_ASSERT_PTR_NOT_NULL(a);
            CU_ASSERT_PTR_NOT_NULL(b);
            CU_ASSERT_EQUAL(n1, n2);
            CU_ASSERT_TRUE(a != NULL && b != NULL && n1 == n2 && memcmp(a, b, n1) == 0);
            free(a);
            free(b);
            remove(mine);
        }
    }
    rmdir(dir);
}

static void test_empty_sequences_and_empty_bin(void)
{
    char dir[] = "/tmp/tsr_indexed_XXXXXX", prefix[600];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(prefix, sizeof prefix, "%s/e", dir);
    tsr_indexed_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_open(prefix, TSR_INDEXED_INT32, &w), TSR_OK);
    CU_ASSERT_EQUAL(tsr_indexed_writer_add(w, NULL, 0), TSR_OK);
    CU_ASSERT_EQUAL(tsr_indexed_writer_add(w, NULL, 0), TSR_OK);
    CU_ASSERT_EQUAL(tsr_indexed_writer_end_document(w), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_writer_finish(w), TSR_OK);
    tsr_indexed *idx = NULL; /* a 0-byte .bin maps to nothing */
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_open(prefix, 10, &idx), TSR_OK);
    CU_ASSERT_EQUAL(tsr_indexed_sequences(idx), 2);
    CU_ASSERT_EQUAL(tsr_indexed_total_tokens(idx), 0);
    int32_t none[1];
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, 1, 0, 0, none), TSR_OK);
    tsr_indexed_close(idx);
    char path[700];
    snprintf(path, sizeof path, "%s.bin", prefix);
    remove(path);
    snprintf(path, sizeof path, "%s.idx", prefix);
    remove(path);
    rmdir(dir);
}

static void test_token_outside_vocab_names_file_and_token(void)
{
    char prefix[512];
    fixture_path(prefix, sizeof prefix, "megatron_code8", "");
    tsr_indexed *idx = NULL;
    CU_ASSERT_EQUAL(tsr_indexed_open(prefix, 120, &idx), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(idx);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "megatron_code8.bin"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "token 120 at sequence 1, position 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "--vocab-size"));
    /* uint8 tokens with 256+ ids skip the scan; 121 is exactly enough */
    fixture_path(prefix, sizeof prefix, "megatron_code1", "");
    CU_ASSERT_EQUAL(tsr_indexed_open(prefix, 256, &idx), TSR_OK);
    tsr_indexed_close(idx);
}

static void test_missing_files_are_configuration_errors(void)
{
    tsr_indexed *idx = NULL;
    CU_ASSERT_EQUAL(tsr_indexed_open("/nonexistent/corpus_text_document", 10, &idx),
                    TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "PREFIX.bin"));
    CU_ASSERT_PTR_NULL(idx);
}

static void test_best_dtype_follows_megatron(void)
{
    CU_ASSERT_EQUAL(tsr_indexed_best_dtype(257), TSR_INDEXED_UINT16);
    CU_ASSERT_EQUAL(tsr_indexed_best_dtype(50257), TSR_INDEXED_UINT16);
    CU_ASSERT_EQUAL(tsr_indexed_best_dtype(65499), TSR_INDEXED_UINT16);
    CU_ASSERT_EQUAL(tsr_indexed_best_dtype(65500), TSR_INDEXED_INT32);
    CU_ASSERT_EQUAL(tsr_indexed_dtype_size(0), 0);
    CU_ASSERT_EQUAL(tsr_indexed_dtype_size(9), 0);
    CU_ASSERT_EQUAL(tsr_indexed_dtype_size(TSR_INDEXED_FLOAT64), 8);
    CU_ASSERT_EQUAL(tsr_indexed_dtype_size(TSR_INDEXED_UINT16), 2);
}

/* ---- hostile files, in memory ------------------------------------------ */

typedef struct pair {
    char *idx, *bin;
    size_t idx_len, bin_len;
} pair;

static pair load_pair(const char *name)
{
    pair p;
    char path[512];
    fixture_path(path, sizeof path, name, ".idx");
    p.idx = tsr_test_read_file(path, &p.idx_len);
    fixture_path(path, sizeof path, name, ".bin");
    p.bin = tsr_test_read_file(path, &p.bin_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.idx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.bin);
    return p;
}

static tsr_status open_pair(const pair *p, int64_t vocab)
{
    tsr_indexed *idx = NULL;
    tsr_status st = tsr_indexed_open_memory("hostile", p->idx, p->idx_len, p->bin, p->bin_len,
                                            vocab, &idx);
    CU_ASSERT_TRUE((st == TSR_OK) == (idx != NULL));
    tsr_indexed_close(idx);
    return st;
}

static void put64(char *at, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        at[i] = (char)(v >> (8 * i));
}

static void put32(char *at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        at[i] = (char)(v >> (8 * i));
}

/* Offsets in the 5-sequence, 5-document-index fixtures. */
enum { LENGTHS = 34, POINTERS = 34 + 4 * 5, DOCS = 34 + 12 * 5 };

static void expect_format_error(pair *p, const char *needle)
{
    CU_ASSERT_EQUAL(open_pair(p, 121), TSR_ERR_FORMAT);
    if (needle != NULL && strstr(tsr_last_error(), needle) == NULL) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, tsr_last_error());
        CU_FAIL("message does not say what is wrong");
    }
}

static void test_every_truncation_is_a_format_error(void)
{
    pair p = load_pair("megatron_code3");
    CU_ASSERT_EQUAL(open_pair(&p, 121), TSR_OK);
    size_t full = p.idx_len;
    for (p.idx_len = 0; p.idx_len < full; p.idx_len++)
        CU_ASSERT_EQUAL(open_pair(&p, 121), TSR_ERR_FORMAT);
    p.idx_len = full;
    size_t bin_full = p.bin_len;
    for (p.bin_len = 0; p.bin_len < bin_full; p.bin_len++)
        CU_ASSERT_EQUAL(open_pair(&p, 121), TSR_ERR_FORMAT);
    p.idx_len = 10;
    expect_format_error(&p, "shorter than the 34-byte");
    free(p.idx);
    free(p.bin);
}

static void test_header_damage(void)
{
    pair p = load_pair("megatron_code4");
    char saved[34];
    memcpy(saved, p.idx, 34);
    p.idx[0] = 'X';
    expect_format_error(&p, "magic");
    memcpy(p.idx, saved, 34);
    put64(p.idx + 9, 2);
    expect_format_error(&p, "version 2");
    memcpy(p.idx, saved, 34);
    for (int code = 0; code < 256; code++) {
        p.idx[17] = (char)code;
        tsr_status st = open_pair(&p, 121);
        if (code < 1 || code > 8) {
            CU_ASSERT_EQUAL(st, TSR_ERR_FORMAT);
            CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "dtype code"));
        } else {
            CU_ASSERT_TRUE(st == TSR_OK || st == TSR_ERR_FORMAT); /* other sizes may not fit */
        }
    }
    memcpy(p.idx, saved, 34);
    put64(p.idx + 18, UINT64_MAX); /* sequence count that overflows any product */
    expect_format_error(&p, "truncated");
    memcpy(p.idx, saved, 34);
    put64(p.idx + 18, 6);
    expect_format_error(&p, NULL);
    memcpy(p.idx, saved, 34);
    put64(p.idx + 26, (uint64_t)1 << 61);
    expect_format_error(&p, "truncated");
    memcpy(p.idx, saved, 34);
    put64(p.idx + 26, 4); /* one document index short: 8 bytes too many */
    expect_format_error(&p, "bytes after");
    memcpy(p.idx, saved, 34);
    CU_ASSERT_EQUAL(open_pair(&p, 121), TSR_OK);
    free(p.idx);
    free(p.bin);
}

static void test_array_damage(void)
{
    pair p = load_pair("megatron_code4");
    char *clean = malloc(p.idx_len);
    memcpy(clean, p.idx, p.idx_len);
#define RESET() memcpy(p.idx, clean, p.idx_len)
    put64(p.idx + DOCS + 8 * 2, 1); /* 0, 2, 1: goes back */
    expect_format_error(&p, "must not decrease");
    RESET();
    put64(p.idx + DOCS, 1);
    expect_format_error(&p, "start with 0");
    RESET();
    put64(p.idx + DOCS + 8 * 4, 4);
    expect_format_error(&p, "last document index");
    RESET();
    put64(p.idx + DOCS + 8 * 3, 99);
    expect_format_error(&p, "pass the 5 sequences");
    RESET();
    put32(p.idx + LENGTHS + 4, (uint32_t)-1);
    expect_format_error(&p, "length -1");
    RESET();
    put32(p.idx + LENGTHS + 4 * 4, 6); /* one token more than .bin holds */
    expect_format_error(&p, "runs outside");
    RESET();
    put64(p.idx + POINTERS + 8 * 1, (uint64_t)-8);
    expect_format_error(&p, "runs outside");
    RESET();
    put64(p.idx + POINTERS + 8 * 2, (uint64_t)INT64_MAX);
    expect_format_error(&p, "runs outside");
    RESET();
    put32(p.idx + LENGTHS, 0x7fffffff);
    expect_format_error(&p, "runs outside");
    RESET();
    put32(p.bin + 4, (uint32_t)-3); /* a negative int32 token */
    expect_format_error(&p, "token -3");
    put32(p.bin + 4, 17);
    CU_ASSERT_EQUAL(open_pair(&p, 121), TSR_OK);
#undef RESET
    free(clean);
    free(p.idx);
    free(p.bin);
}

static void test_float_tokens_must_be_whole(void)
{
    pair p = load_pair("megatron_code7");
    float half = 2.5f, nan = 0.0f / 0.0f;
    memcpy(p.bin + 4, &half, 4);
    expect_format_error(&p, "not a whole number");
    memcpy(p.bin + 4, &nan, 4);
    expect_format_error(&p, "not a whole number");
    free(p.idx);
    free(p.bin);
    p = load_pair("megatron_code6");
    double big = 1e300;
    memcpy(p.bin + 8, &big, 8);
    expect_format_error(&p, "outside the vocabulary");
    free(p.idx);
    free(p.bin);
}

static void test_out_of_range_reads_fail_cleanly(void)
{
    pair p = load_pair("megatron_code8");
    tsr_indexed *idx = NULL;
    CU_ASSERT_EQUAL_FATAL(
        tsr_indexed_open_memory("m", p.idx, p.idx_len, p.bin, p.bin_len, 121, &idx), TSR_OK);
    int32_t out[8];
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, 5, 0, 1, out), TSR_ERR_INTERNAL);
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, -1, 0, 1, out), TSR_ERR_INTERNAL);
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, 0, 2, 2, out), TSR_ERR_INTERNAL);
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, 0, -1, 1, out), TSR_ERR_INTERNAL);
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, 3, 0, 0, out), TSR_OK);
    tsr_token_source *src = tsr_indexed_source(idx);
    CU_ASSERT_EQUAL(src->documents, 5); /* packing runs over sequences */
    CU_ASSERT_EQUAL(src->ops->length(src, 4), 5);
    tsr_token_source_destroy(src);
    free(p.idx);
    free(p.bin);
}

int main(void)
{
    static const tsr_test_case files[] = {
        TSR_TEST(test_reads_every_dtype_of_megatron_files),
        TSR_TEST(test_writer_matches_megatron_bytes),
        TSR_TEST(test_empty_sequences_and_empty_bin),
        TSR_TEST(test_token_outside_vocab_names_file_and_token),
        TSR_TEST(test_missing_files_are_configuration_errors),
        TSR_TEST(test_best_dtype_follows_megatron),
    };
    static const tsr_test_case hostile[] = {
        TSR_TEST(test_every_truncation_is_a_format_error),
        TSR_TEST(test_header_damage),
        TSR_TEST(test_array_damage),
        TSR_TEST(test_float_tokens_must_be_whole),
        TSR_TEST(test_out_of_range_reads_fail_cleanly),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("indexed files", files),
                                            TSR_SUITE("hostile indexed files", hostile)};
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
