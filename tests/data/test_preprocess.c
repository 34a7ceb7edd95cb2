/*
 * test_preprocess.c - `tessera preprocess` end to end: text and JSON lines
 * in, .bin/.idx out, read back through the reader; tokens must equal the
 * tokenizer's, documents and empty lines laid out as Megatron does, and
 * bad input must leave no output behind.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "data/indexed.h"
#include "harness.h"

static char dir[] = "/tmp/tsr_preprocess_XXXXXX";
static char vocab_flag[600], merges_flag[600];

static void path_in_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_file(const char *name, const char *text)
{
    char path[600];
    path_in_dir(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* Runs `tessera preprocess --input DIR/input --output-prefix DIR/prefix`
 * plus the NULL-terminated extra arguments. */
static int run(const char *input, const char *prefix, ...)
{
    char in[600], out[600];
    path_in_dir(in, sizeof in, input);
    path_in_dir(out, sizeof out, prefix);
    char *argv[32] = {"--input", in, "--output-prefix", out};
    int argc = 4;
    va_list ap;
    va_start(ap, prefix);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 32;)
        argv[argc++] = a;
    va_end(ap);
    return tsr_cmd_preprocess(argc, argv);
}

static tsr_indexed *open_output(const char *name, int64_t vocab)
{
    char prefix[600];
    path_in_dir(prefix, sizeof prefix, name);
    tsr_indexed *idx = NULL;
    tsr_status st = tsr_indexed_open(prefix, vocab, &idx);
    if (st != TSR_OK)
        fprintf(stderr, "%s\n", tsr_last_error());
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    return idx;
}

static void expect_sequence(tsr_indexed *idx, int64_t seq, const int32_t *want, int64_t n)
{
    CU_ASSERT_EQUAL_FATAL(tsr_indexed_length(idx, seq), n);
    int32_t got[64];
    CU_ASSERT_EQUAL(tsr_indexed_read(idx, seq, 0, n, got), TSR_OK);
    CU_ASSERT_EQUAL(memcmp(got, want, (size_t)n * sizeof *want), 0);
}

static void remove_pair(const char *name)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    remove(path);
    snprintf(path, sizeof path, "%s/%s.idx", dir, name);
    remove(path);
}

static int exists(const char *name)
{
    char path[700];
    path_in_dir(path, sizeof path, name);
    return access(path, F_OK) == 0;
}

static void test_text_lines_with_byte_tokenizer(void)
{
    write_file("in.txt", "ab\n\nc\xc3\xa9\r\nlast");
    CU_ASSERT_EQUAL_FATAL(run("in.txt", "t", "--tokenizer-type", "byte", "--append-eod", NULL),
                          0);
    tsr_indexed *idx = open_output("t_text_document", 257);
    CU_ASSERT_EQUAL(tsr_indexed_dtype_code(idx), TSR_INDEXED_UINT16);
    /* four lines, four documents; the empty one holds no sequence */
    CU_ASSERT_EQUAL(tsr_indexed_documents(idx), 4);
    CU_ASSERT_EQUAL(tsr_indexed_sequences(idx), 3);
    static const long long starts[] = {0, 1, 1, 2, 3};
    for (int d = 0; d <= 4; d++)
        CU_ASSERT_EQUAL(tsr_indexed_document_start(idx, d), starts[d]);
    static const int32_t s0[] = {'a', 'b', 256}, s1[] = {'c', 0xc3, 0xa9, 256},
                         s2[] = {'l', 'a', 's', 't', 256};
    expect_sequence(idx, 0, s0, 3);
    expect_sequence(idx, 1, s1, 4);
    expect_sequence(idx, 2, s2, 5);
    tsr_indexed_close(idx);
    remove_pair("t_text_document");
}

static void test_jsonl_with_gpt2_and_two_keys(void)
{
    write_file("in.jsonl",
               "{\"id\": 1, \"meta\": {\"a\": [1, 2, null]}, \"text\": \"hello world! it's\", "
               "\"title\": \"lll\"}\n"
               "\n"
               "{\"title\": \"h\\u0065llo\", \"text\": \"\"}\n");
    CU_ASSERT_EQUAL_FATAL(run("in.jsonl", "j", "--tokenizer-type", "gpt2", vocab_flag,
                              merges_flag, "--json-keys", "text title", "--append-eod", NULL),
                          0);
    /* ids derived in test_tokenizer.c; <|endoftext|> is 28 */
    tsr_indexed *text = open_output("j_text_document", 29);
    CU_ASSERT_EQUAL(tsr_indexed_documents(text), 2);
    CU_ASSERT_EQUAL(tsr_indexed_sequences(text), 1); /* the empty text adds none */
    static const int32_t t0[] = {17, 22, 0, 13, 6, 11, 27, 28};
    expect_sequence(text, 0, t0, 8);
    tsr_indexed_close(text);
    tsr_indexed *title = open_output("j_title_document", 29);
    CU_ASSERT_EQUAL(tsr_indexed_sequences(title), 2);
    static const int32_t h0[] = {15, 7, 28}, h1[] = {17, 28};
    expect_sequence(title, 0, h0, 3);
    expect_sequence(title, 1, h1, 2);
    tsr_indexed_close(title);
    remove_pair("j_text_document");
    remove_pair("j_title_document");
}

static void expect_bits(tsr_indexed *mask, int64_t seq, int zeros, int ones)
{
    int32_t want[64];
    for (int i = 0; i < zeros + ones; i++)
        want[i] = i >= zeros;
    expect_sequence(mask, seq, want, zeros + ones);
}

/* --sft: prompt tokens 0 in the loss mask, response (and end of document) 1;
 * chatml: only the assistant's content and end marker are 1. */
static void test_sft_prompt_response_and_chatml(void)
{
    write_file("sft.jsonl", "{\"prompt\": \"2+3=\", \"response\": \"5\"}\n\n"
                            "{\"q\": 1, \"prompt\": \"hi \", \"response\": \"there!\"}\n");
    CU_ASSERT_EQUAL_FATAL(run("sft.jsonl", "s", "--sft", "--tokenizer-type", "byte",
                              "--append-eod", NULL),
                          0);
    tsr_indexed *tok = open_output("s_sft_document", 257);
    tsr_indexed *mask = open_output("s_sft_document_lossmask", 2);
    CU_ASSERT_EQUAL(tsr_indexed_sequences(tok), 2);
    static const int32_t t0[] = {'2', '+', '3', '=', '5', 256};
    expect_sequence(tok, 0, t0, 6);
    expect_bits(mask, 0, 4, 2);
    expect_bits(mask, 1, 3, 7);
    tsr_indexed_close(tok);
    tsr_indexed_close(mask);

    write_file("chat.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, "
                             "{\"role\": \"assistant\", \"content\": \"bc\"}]}\n");
    CU_ASSERT_EQUAL_FATAL(run("chat.jsonl", "c", "--sft", "--chat-template", "chatml",
                              "--tokenizer-type", "byte", NULL),
                          0);
    mask = open_output("c_sft_document_lossmask", 2);
    /* "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n": 12+4+1+1+11+12+9+1 */
    expect_bits(mask, 0, 51, 2 + 11);
    tsr_indexed_close(mask);

    /* bad input: exit 2, nothing left */
    write_file("nokey.jsonl", "{\"prompt\": \"x\", \"answer\": \"y\"}\n");
    CU_ASSERT_EQUAL(run("nokey.jsonl", "n", "--sft", "--tokenizer-type", "byte", NULL), 2);
    CU_ASSERT_FALSE(exists("n_sft_document.bin"));
    CU_ASSERT_FALSE(exists("n_sft_document_lossmask.idx"));
    CU_ASSERT_EQUAL(run("nokey.jsonl", "n", "--sft", "--response-key", "answer", NULL), 0);
    CU_ASSERT_EQUAL(run("sft.jsonl", "x", "--sft", "--chat-template", "chatml", NULL), 2);
    CU_ASSERT_EQUAL(run("in.txt", "x", "--sft", NULL), 2);
    CU_ASSERT_EQUAL(run("sft.jsonl", "x", "--prompt-key", "prompt", NULL), 2);
    CU_ASSERT_EQUAL(run("sft.jsonl", "x", "--sft", "--json-keys", "text", NULL), 2);
    CU_ASSERT_FALSE(exists("x_sft_document.bin"));
    static const char *const names[] = {"s_sft_document", "s_sft_document_lossmask",
                                        "c_sft_document", "c_sft_document_lossmask",
                                        "n_sft_document", "n_sft_document_lossmask"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        remove_pair(names[i]);
    static const char *const inputs[] = {"sft.jsonl", "chat.jsonl", "nokey.jsonl"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char path[700];
        path_in_dir(path, sizeof path, inputs[i]);
        CU_ASSERT_EQUAL(remove(path), 0);
    }
}

static void test_bad_input_exits_2_and_leaves_nothing(void)
{
    write_file("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": 5}\n");
    CU_ASSERT_EQUAL(run("bad.jsonl", "b", NULL), 2);
    CU_ASSERT_FALSE(exists("b_text_document.bin"));
    CU_ASSERT_FALSE(exists("b_text_document.idx"));
    write_file("bad2.jsonl", "{\"txt\": \"ok\"}\n");
    CU_ASSERT_EQUAL(run("bad2.jsonl", "b", NULL), 2);
    write_file("bad3.jsonl", "{\"text\": \"ok\"} trailing\n");
    CU_ASSERT_EQUAL(run("bad3.jsonl", "b", NULL), 2);
    CU_ASSERT_EQUAL(run("missing.txt", "b", NULL), 2);
    CU_ASSERT_EQUAL(run("in.txt", "b", "--json-keys", "text", NULL), 2);
    CU_ASSERT_EQUAL(run("in.txt", "b", "--tokenizer-type", "gpt2", NULL), 2);
    CU_ASSERT_EQUAL(run("in.txt", "b", "--tokenizer-type", "bpe", NULL), 2);
    CU_ASSERT_EQUAL(run("in.txt", "b", "--vocab-file", "x", NULL), 2);
    /* a vocabulary without <|endoftext|> cannot --append-eod */
    write_file("v.json", "{\"a\": 0}");
    write_file("m.txt", "");
    char v[700], m[700];
    snprintf(v, sizeof v, "--vocab-file=%s/v.json", dir);
    snprintf(m, sizeof m, "--merge-file=%s/m.txt", dir);
    CU_ASSERT_EQUAL(run("in.txt", "b", "--tokenizer-type", "gpt2", v, m, "--append-eod", NULL),
                    2);
    CU_ASSERT_FALSE(exists("b_text_document.bin"));
    static const char *const files[] = {"in.txt", "in.jsonl", "bad.jsonl", "bad2.jsonl",
                                        "bad3.jsonl", "v.json", "m.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[700];
        path_in_dir(path, sizeof path, files[i]);
        CU_ASSERT_EQUAL(remove(path), 0);
    }
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(vocab_flag, sizeof vocab_flag, "--vocab-file=%s/bpe/vocab.json", TSR_DATA_FIXTURES);
    snprintf(merges_flag, sizeof merges_flag, "--merge-file=%s/bpe/merges.txt",
             TSR_DATA_FIXTURES);
    static const tsr_test_case cases[] = {
        TSR_TEST(test_text_lines_with_byte_tokenizer),
        TSR_TEST(test_jsonl_with_gpt2_and_two_keys),
        TSR_TEST(test_sft_prompt_response_and_chatml),
        TSR_TEST(test_bad_input_exits_2_and_leaves_nothing),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("preprocess", cases)};
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
