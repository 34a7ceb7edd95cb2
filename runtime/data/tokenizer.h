/*
 * tokenizer.h - the tokenizers of `tessera preprocess`.
 *
 * byte: every byte of the text is its own id (0..255); the end-of-document
 * id is 256, so the vocabulary has 257 ids.
 *
 * gpt2: GPT-2's byte-level BPE from a vocab.json / merges.txt pair, as the
 * original encoder (and Megatron's GPT2BPETokenizer) runs it:
 *   1. the text is cut into pieces by GPT-2's pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (tsr_pretokenize_next; \p{L}, \p{N} from Unicode tables, \s the
 *      White_Space property; bytes that are not valid UTF-8 count as one
 *      "other" character each);
 *   2. each piece's bytes become symbols through GPT-2's byte-to-unicode
 *      map (printable Latin-1 bytes stand for themselves, the other 68
 *      bytes for U+0100 upwards), looked up in vocab.json;
 *   3. the adjacent pair of lowest merge rank is merged, everywhere in the
 *      piece, until no pair has a rank.
 * "<|endoftext|>" in vocab.json is the end-of-document id. Special tokens
 * in the text are not recognised: like the original encoder, it is text.
 *
 * Files are hostile input: every malformed line or value is a
 * TSR_ERR_FORMAT naming the file and where. tests/fuzz/fuzz_bpe.c drives
 * tsr_tokenizer_gpt2_load and tsr_tokenizer_encode. A tokenizer is not
 * thread-safe (encode reuses scratch buffers). Called by cmd_preprocess.c.
 */
#ifndef TSR_RUNTIME_TOKENIZER_H
#define TSR_RUNTIME_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

typedef struct tsr_tokenizer tsr_tokenizer;

typedef struct tsr_token_buffer {
    int32_t *ids;
    int64_t count, cap;
} tsr_token_buffer;

tsr_status tsr_tokenizer_byte(tsr_tokenizer **out);
tsr_status tsr_tokenizer_gpt2_open(const char *vocab_file, const char *merges_file,
                                   tsr_tokenizer **out);
/* The same from memory; the names are used in messages. */
tsr_status tsr_tokenizer_gpt2_load(const char *vocab, size_t vocab_len, const char *vocab_name,
                                   const char *merges, size_t merges_len,
                                   const char *merges_name, tsr_tokenizer **out);
void tsr_tokenizer_destroy(tsr_tokenizer *t);

/* Largest id + 1. */
int64_t tsr_tokenizer_vocab_size(const tsr_tokenizer *t);
/* End-of-document id, or -1 when the vocabulary has none. */
int32_t tsr_tokenizer_eod(const tsr_tokenizer *t);

/* Appends the ids of text[0..len) to out. */
tsr_status tsr_tokenizer_encode(tsr_tokenizer *t, const char *text, size_t len,
                                tsr_token_buffer *out);

/* The text of ids[0..n) (tokenizer_decode.c): *text is a NUL-terminated
 * heap string of *len bytes, freed by the caller. The end-of-document id
 * and ids outside the vocabulary add nothing. */
tsr_status tsr_tokenizer_decode(const tsr_tokenizer *t, const int32_t *ids, int64_t n,
                                char **text, size_t *len);
/* End of the GPT-2 pre-tokenisation piece that starts at pos < len. */
size_t tsr_pretokenize_next(const char *text, size_t len, size_t pos);

/* GPT-2's byte-to-unicode map: the code point byte b stands for. */
uint32_t tsr_gpt2_byte_symbol(unsigned char b);

int tsr_unicode_is_letter(uint32_t cp);
int tsr_unicode_is_number(uint32_t cp);
int tsr_unicode_is_space(uint32_t cp);

tsr_status tsr_token_buffer_push(tsr_token_buffer *b, int32_t id);
void tsr_token_buffer_free(tsr_token_buffer *b);

#endif /* TSR_RUNTIME_TOKENIZER_H */
