/*
 * fuzz_bpe.c - libFuzzer target for the GPT-2 tokenizer files and text.
 *
 * Input: little-endian uint16 vocab length, uint16 merges length, then
 * vocab.json bytes, merges.txt bytes and the text to encode (each copied
 * into its own allocation for AddressSanitizer). Loading must end in
 * TSR_OK or TSR_ERR_FORMAT; an accepted tokenizer encodes the text, and
 * every id it produces must be in the vocabulary. The pre-tokeniser also
 * runs over the raw input, which must split it into non-empty pieces that
 * tile it exactly. Replayed in CI over tests/fuzz/corpus/bpe by replay.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t pos = 0; pos < size;) {
        size_t end = tsr_pretokenize_next((const char *)data, size, pos);
        if (end <= pos || end > size)
            abort();
        pos = end;
    }
    if (size < 4)
        return 0;
    size_t vlen = (size_t)data[0] | (size_t)data[1] << 8;
    size_t mlen = (size_t)data[2] | (size_t)data[3] << 8;
    size_t rest = size - 4;
    vlen = vlen > rest ? rest : vlen;
    mlen = mlen > rest - vlen ? rest - vlen : mlen;
    size_t tlen = rest - vlen - mlen;
    char *vocab = copy(data + 4, vlen), *merges = copy(data + 4 + vlen, mlen);
    char *text = copy(data + 4 + vlen + mlen, tlen);
    tsr_tokenizer *t = NULL;
    tsr_status st = tsr_tokenizer_gpt2_load(vocab, vlen, "vocab.json", merges, mlen,
                                            "merges.txt", &t);
    if (st != TSR_OK && st != TSR_ERR_FORMAT)
        abort();
    if (st == TSR_OK) {
        tsr_token_buffer ids = {0};
        st = tsr_tokenizer_encode(t, text, tlen, &ids);
        if (st != TSR_OK && st != TSR_ERR_FORMAT)
            abort();
        for (int64_t i = 0; st == TSR_OK && i < ids.count; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= tsr_tokenizer_vocab_size(t))
                abort();
        tsr_token_buffer_free(&ids);
        tsr_tokenizer_destroy(t);
    }
    free(vocab);
    free(merges);
    free(text);
    return 0;
}
