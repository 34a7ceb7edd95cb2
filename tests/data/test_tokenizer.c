/*
 * test_tokenizer.c - byte tokenizer, GPT-2 pre-tokenisation and byte map,
 * BPE on a hand-made vocab.json/merges.txt whose ids are derived by hand
 * below, hostile tokenizer files, and the JSON reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "data/tokenizer_json.h"
#include "harness.h"

static void test_byte_tokenizer(void)
{
    tsr_tokenizer *t = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_tokenizer_byte(&t), TSR_OK);
    CU_ASSERT_EQUAL(tsr_tokenizer_vocab_size(t), 257);
    CU_ASSERT_EQUAL(tsr_tokenizer_eod(t), 256);
    tsr_token_buffer b = {0};
    CU_ASSERT_EQUAL(tsr_tokenizer_encode(t, "h\xc3\xa9\0!", 5, &b), TSR_OK);
    static const int32_t want[] = {104, 195, 169, 0, 33};
    CU_ASSERT_EQUAL_FATAL(b.count, 5);
    CU_ASSERT_EQUAL(memcmp(b.ids, want, sizeof want), 0);
    tsr_token_buffer_free(&b);
    tsr_tokenizer_destroy(t);
}

static void test_gpt2_byte_map(void)
{
    /* printable bytes stand for themselves; bytes 0..32 come first among
     * the rest (U+0100..U+0120, so space is U+0120), then 127..160, 173 */
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol('!'), '!');
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol('~'), '~');
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(0), 0x100);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(' '), 0x120);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol('\n'), 0x10A);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(127), 0x121);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(160), 0x142);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(161), 161);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(173), 0x143);
    CU_ASSERT_EQUAL(tsr_gpt2_byte_symbol(255), 255);
    unsigned char seen[0x144] = {0};
    for (int b = 0; b < 256; b++)
        seen[tsr_gpt2_byte_symbol((unsigned char)b)]++;
    for (int c = 0; c < 0x144; c++)
        CU_ASSERT_TRUE(seen[c] <= 1);
}

/* Splits text with the pre-tokeniser and compares to NUL-separated
 * expected pieces. */
static void expect_pieces(const char *text, size_t len, const char *const *want, size_t n)
{
    size_t pos = 0, i = 0;
    while (pos < len) {
        size_t end = tsr_pretokenize_next(text, len, pos);
        CU_ASSERT_TRUE_FATAL(end > pos && end <= len);
        CU_ASSERT_TRUE_FATAL(i < n);
        if (strlen(want[i]) != end - pos || memcmp(want[i], text + pos, end - pos) != 0) {
            fprintf(stderr, "piece %zu: got '%.*s', want '%s'\n", i, (int)(end - pos),
                    text + pos, want[i]);
            CU_FAIL("pre-tokenisation differs");
        }
        pos = end;
        i++;
    }
    CU_ASSERT_EQUAL(i, n);
}

#define PIECES(text, ...)                                                                     \
    do {                                                                                      \
        static const char *const want_[] = {__VA_ARGS__};                                      \
        expect_pieces(text, sizeof(text) - 1, want_, sizeof want_ / sizeof want_[0]);          \
    } while (0)

static void test_pretokenize_follows_gpt2_pattern(void)
{
    PIECES("hello world! it's", "hello", " world", "!", " it", "'s");
    PIECES("don't I'M", "don", "'t", " I", "'", "M");
    PIECES("we'll've'd're'm", "we", "'ll", "'ve", "'d", "'re", "'m");
    PIECES("a  b", "a", " ", " b");             /* \s+(?!\S) leaves one space */
    PIECES("x   \n\ny", "x", "   \n", "\n", "y"); /* then \s+ takes the last */
    PIECES("end  ", "end", "  ");                /* trailing spaces: one piece */
    PIECES(" 123abc 4", " 123", "abc", " 4");
    PIECES("x!!? ...", "x", "!!?", " ...");
    PIECES("tab\tx", "tab", "\t", "x");
    PIECES(" ", " ");
    PIECES("\xc3\xa9\xe4\xb8\xad\xe6\x96\x87 \xc2\xb2\xc2\xbd", "\xc3\xa9\xe4\xb8\xad\xe6\x96\x87",
           " \xc2\xb2\xc2\xbd");                              /* letters; No numbers */
    PIECES("a\xc2\xa0" "b", "a", "\xc2\xa0", "b");            /* NBSP is White_Space */
    PIECES("\xff\xfe" "ab\xc3", "\xff\xfe", "ab", "\xc3"); /* invalid UTF-8: others */
    PIECES("\xf0\x9f\x98\x80!x", "\xf0\x9f\x98\x80!", "x");   /* emoji is "other" */
}

static tsr_tokenizer *fixture_tokenizer(void)
{
    tsr_tokenizer *t = NULL;
    tsr_status st = tsr_tokenizer_gpt2_open(TSR_DATA_FIXTURES "/bpe/vocab.json",
                                            TSR_DATA_FIXTURES "/bpe/merges.txt", &t);
    if (st != TSR_OK)
        fprintf(stderr, "%s\n", tsr_last_error());
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    return t;
}

static void expect_ids(tsr_tokenizer *t, const char *text, const int32_t *want, int64_t n)
{
    tsr_token_buffer b = {0};
    CU_ASSERT_EQUAL_FATAL(tsr_tokenizer_encode(t, text, strlen(text), &b), TSR_OK);
    CU_ASSERT_EQUAL(b.count, n);
    for (int64_t i = 0; i < n && i < b.count; i++)
        CU_ASSERT_EQUAL(b.ids[i], want[i]);
    tsr_token_buffer_free(&b);
}

static void test_bpe_on_hand_made_files(void)
{
    tsr_tokenizer *t = fixture_tokenizer();
    CU_ASSERT_EQUAL(tsr_tokenizer_vocab_size(t), 29);
    CU_ASSERT_EQUAL(tsr_tokenizer_eod(t), 28);
    /* pieces and merges (ranks in merges.txt order, 0 = "h e"):
     *  "hello"  h e l l o -> he l l o -> he ll o -> hell o -> hello      17
     *  " world" Ġ w o r l d -> Ġw . -> Ġw or -> Ġwor -> Ġworl -> Ġworld  22
     *  "!" 0;  " it" has no merge: Ġ i t  13 6 11;  "'s" 27
     *  " hello" -> Ġ hello (no "Ġ hello" merge)  13 17;  "," 1
     *  "low"  l o w -> lo w  23 12
     *  " lol" Ġ l o l: "l o" (rank 9) beats "Ġ l" (rank 10) -> Ġ lo l  13 23 7 */
    static const int32_t sentence[] = {17, 22, 0, 13, 6, 11, 27, 13, 17, 1, 23, 12, 13, 23, 7};
    expect_ids(t, "hello world! it's hello,low lol", sentence,
               sizeof sentence / sizeof sentence[0]);
    /* every occurrence of the lowest pair merges left to right */
    static const int32_t lll[] = {15, 7}, llll[] = {15, 15}, lllll[] = {15, 15, 7};
    expect_ids(t, "lll", lll, 2);
    expect_ids(t, "llll", llll, 2);
    expect_ids(t, "lllll", lllll, 3);
    /* " low": "l o" (9) merges before "Ġ l" (10) can, so "Ġl o" never applies */
    static const int32_t low[] = {13, 23, 12};
    expect_ids(t, " low", low, 3);
    /* a byte whose symbol the vocabulary lacks */
    tsr_token_buffer b = {0};
    CU_ASSERT_EQUAL(tsr_tokenizer_encode(t, "hex", 3, &b), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "byte 0x78"));
    tsr_token_buffer_free(&b);
    tsr_tokenizer_destroy(t);
}

/* ids back to text: the inverse of encoding, the end of document silent */
static void test_decode_inverts_encode(void)
{
    tsr_tokenizer *t = fixture_tokenizer();
    const char *text = "hello world! it's hello,low lol";
    tsr_token_buffer b = {0};
    CU_ASSERT_EQUAL_FATAL(tsr_tokenizer_encode(t, text, strlen(text), &b), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_token_buffer_push(&b, tsr_tokenizer_eod(t)), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_token_buffer_push(&b, 9999), TSR_OK); /* outside: nothing */
    char *back = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_tokenizer_decode(t, b.ids, b.count, &back, &len), TSR_OK);
    CU_ASSERT_STRING_EQUAL(back, text);
    CU_ASSERT_EQUAL(len, strlen(text));
    free(back);
    tsr_token_buffer_free(&b);
    tsr_tokenizer_destroy(t);
    CU_ASSERT_EQUAL_FATAL(tsr_tokenizer_byte(&t), TSR_OK);
    const int32_t bytes[] = {'a', 0xc3, 0xa9, 256, '\n'};
    CU_ASSERT_EQUAL_FATAL(tsr_tokenizer_decode(t, bytes, 5, &back, &len), TSR_OK);
    CU_ASSERT_EQUAL(len, 4);
    CU_ASSERT_EQUAL(memcmp(back, "a\xc3\xa9\n", 4), 0);
    free(back);
    tsr_tokenizer_destroy(t);
}

static void test_bpe_long_piece_is_fast_and_exact(void)
{
    /* 200001 'l': pairs merge into ll ... ll l (one left over) */
    tsr_tokenizer *t = fixture_tokenizer();
    size_t n = 200001;
    char *text = malloc(n + 1);
    memset(text, 'l', n);
    text[n] = '\0';
    tsr_token_buffer b = {0};
    CU_ASSERT_EQUAL(tsr_tokenizer_encode(t, text, n, &b), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(b.count, 100001);
    for (int64_t i = 0; i < 100000; i++)
        CU_ASSERT_EQUAL_FATAL(b.ids[i], 15);
    CU_ASSERT_EQUAL(b.ids[100000], 7);
    tsr_token_buffer_free(&b);
    free(text);
    tsr_tokenizer_destroy(t);
}

static void expect_load_error(const char *vocab, const char *merges, const char *needle)
{
    tsr_tokenizer *t = NULL;
    CU_ASSERT_EQUAL(tsr_tokenizer_gpt2_load(vocab, strlen(vocab), "v.json", merges,
                                            strlen(merges), "m.txt", &t),
                    TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(t);
    if (strstr(tsr_last_error(), needle) == NULL) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, tsr_last_error());
        CU_FAIL("message does not say what is wrong");
    }
}

static void test_hostile_tokenizer_files(void)
{
    const char *ok_vocab = "{\"a\": 0, \"b\": 1, \"ab\": 2}";
    expect_load_error("[1, 2]", "", "v.json: invalid JSON at byte 0");
    expect_load_error("{}", "", "empty");
    expect_load_error("{\"a\": 0, \"a\": 1}", "", "appears twice");
    expect_load_error("{\"a\": -1}", "", "out of range");
    expect_load_error("{\"a\": 1.5}", "", "whole number");
    expect_load_error("{\"a\": 0", "", "invalid JSON");
    expect_load_error("{\"a\": 0} x", "", "after the value");
    expect_load_error("{\"a\\q\": 0}", "", "unknown escape");
    expect_load_error("{\"\\udc00\": 0}", "", "lone low surrogate");
    expect_load_error("{\"\\ud800x\": 0}", "", "low one");
    expect_load_error("{\"a\x01\": 0}", "", "control character");
    expect_load_error(ok_vocab, "a b c\n", "m.txt line 1");
    expect_load_error(ok_vocab, "#version: 0.2\na\n", "m.txt line 2");
    expect_load_error(ok_vocab, "a c\n", "does not hold");
    expect_load_error(ok_vocab, "b a\n", "does not hold"); /* "ba" is not a token */
    tsr_tokenizer *t = NULL;
    /* an empty token first (found by fuzz_bpe: NULL + 0 in the key store) */
    const char *empty_first = "{\"\": 0, \"a\": 1}";
    CU_ASSERT_EQUAL(tsr_tokenizer_gpt2_load(empty_first, strlen(empty_first), "v", "", 0, "m",
                                            &t),
                    TSR_OK);
    tsr_tokenizer_destroy(t);
    t = NULL;
    CU_ASSERT_EQUAL(tsr_tokenizer_gpt2_load(ok_vocab, strlen(ok_vocab), "v", "a b\r\n\n", 6,
                                            "m", &t),
                    TSR_OK);
    CU_ASSERT_EQUAL(tsr_tokenizer_eod(t), -1);
    CU_ASSERT_EQUAL(tsr_tokenizer_vocab_size(t), 3);
    tsr_tokenizer_destroy(t);
    t = NULL;
    /* a missing file is the user's input, like a missing --data-path */
    CU_ASSERT_EQUAL(tsr_tokenizer_gpt2_open("/nonexistent/vocab.json", "/nonexistent/m.txt", &t),
                    TSR_ERR_INVALID_ARG);
}

static void test_json_reader(void)
{
    const char *text = "{\"k\": [1, -2.5e3, true, {\"x\": null}], \"s\": "
                       "\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\\u0000z\"}";
    tsr_json j;
    tsr_json_init(&j, text, strlen(text), "t");
    tsr_json_text s = {0};
    CU_ASSERT_EQUAL(tsr_json_expect(&j, '{', "{"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_string(&j, &s), TSR_OK);
    CU_ASSERT_STRING_EQUAL(s.data, "k");
    CU_ASSERT_EQUAL(tsr_json_expect(&j, ':', ":"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_skip(&j), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_expect(&j, ',', ","), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_string(&j, &s), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_expect(&j, ':', ":"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_string(&j, &s), TSR_OK);
    static const char want[] = "a\xc3\xa9\xf0\x9f\x98\x80\n\"/\0z";
    CU_ASSERT_EQUAL(s.len, sizeof want - 1);
    CU_ASSERT_EQUAL(memcmp(s.data, want, sizeof want - 1), 0);
    CU_ASSERT_EQUAL(tsr_json_expect(&j, '}', "}"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_json_end(&j), TSR_OK);
    /* nesting deeper than the limit fails instead of exhausting the stack */
    char deep[4001];
    memset(deep, '[', 4000);
    deep[4000] = '\0';
    tsr_json_init(&j, deep, 4000, "deep");
    CU_ASSERT_EQUAL(tsr_json_skip(&j), TSR_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "nested too deeply"));
    static const char *const bad[] = {"[1,]", "[1 2]", "tru", "\"abc", "-", "{\"a\" 1}", "{1:2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tsr_json_init(&j, bad[i], strlen(bad[i]), "bad");
        tsr_status st = tsr_json_skip(&j);
        if (st == TSR_OK)
            st = tsr_json_end(&j);
        CU_ASSERT_EQUAL(st, TSR_ERR_FORMAT);
    }
    int64_t v = 0;
    tsr_json_init(&j, "99999999999999999999", 20, "big");
    CU_ASSERT_EQUAL(tsr_json_integer(&j, 0, INT64_MAX, &v), TSR_ERR_FORMAT);
    tsr_json_text_free(&s);
}

int main(void)
{
    static const tsr_test_case cases[] = {
        TSR_TEST(test_byte_tokenizer),
        TSR_TEST(test_gpt2_byte_map),
        TSR_TEST(test_pretokenize_follows_gpt2_pattern),
        TSR_TEST(test_bpe_on_hand_made_files),
        TSR_TEST(test_decode_inverts_encode),
        TSR_TEST(test_bpe_long_piece_is_fast_and_exact),
        TSR_TEST(test_hostile_tokenizer_files),
        TSR_TEST(test_json_reader),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("tokenizer", cases)};
    return tsr_test_main(suites, sizeof suites / sizeof suites[0]);
}
