/*
 * fuzz_indexed.c - libFuzzer target for the MMIDIDX reader and, behind it,
 * the sample packer.
 *
 * Input: a little-endian uint16 n, then n bytes of .idx, then the .bin.
 * Each part is copied into its own allocation so that AddressSanitizer
 * sees any read past either file's end. Every input must end in TSR_OK or
 * TSR_ERR_FORMAT; an accepted dataset is then read completely and packed
 * into samples. Built with clang -fsanitize=fuzzer (TSR_BUILD_FUZZ=ON) and,
 * for CI, replayed over tests/fuzz/corpus/indexed by replay.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/gpt_samples.h"
#include "data/indexed.h"
#include "tessera/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(tsr_indexed *idx)
{
    int32_t buf[256];
    for (int64_t s = 0; s < tsr_indexed_sequences(idx); s++) {
        int64_t len = tsr_indexed_length(idx, s);
        for (int64_t off = 0; off < len; off += 256) {
            int64_t n = len - off < 256 ? len - off : 256;
            if (tsr_indexed_read(idx, s, off, n, buf) != TSR_OK)
                abort(); /* validated at open: reads cannot fail */
        }
    }
    const tsr_token_source *src = tsr_indexed_source(idx);
    static const char *const splits[] = {"969,30,1", "1,1,1", "1"};
    for (int k = 0; k < 3; k++) {
        double f[3];
        int64_t b[4];
        if (tsr_split_parse(splits[k], f) != TSR_OK)
            abort();
        tsr_split_bounds(f, src->documents, b);
        if (b[0] != 0 || b[3] != src->documents)
            abort();
        for (int seq = 1; seq <= 4; seq++) {
            tsr_gpt_samples *s = NULL;
            if (b[1] < b[0] || b[2] < b[1] || b[3] < b[2])
                abort();
            if (tsr_gpt_samples_create(src, b[0], b[1], seq, 99, "fuzz", &s) != TSR_OK)
                continue;
            int64_t per = tsr_gpt_samples_per_epoch(s);
            for (int64_t i = 0; i < 6; i++) /* both sides of an epoch boundary */
                if (tsr_gpt_samples_get(s, i % 3 + (i / 3) * per, buf) != TSR_OK)
                    abort();
            tsr_gpt_samples_destroy(s);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tsr_log_configure(0, 1, TSR_LOG_OFF);
    if (size < 2)
        return 0;
    size_t idx_len = (size_t)data[0] | (size_t)data[1] << 8;
    if (idx_len > size - 2)
        idx_len = size - 2;
    size_t bin_len = size - 2 - idx_len;
    /* an empty file is mapped as NULL by tsr_indexed_open: do the same */
    uint8_t *idx_copy = idx_len ? malloc(idx_len) : NULL;
    uint8_t *bin_copy = bin_len ? malloc(bin_len) : NULL;
    if (idx_len)
        memcpy(idx_copy, data + 2, idx_len);
    if (bin_len)
        memcpy(bin_copy, data + 2 + idx_len, bin_len);
    static const int64_t vocabs[] = {0, 256};
    for (int v = 0; v < 2; v++) {
        tsr_indexed *idx = NULL;
        tsr_status st = tsr_indexed_open_memory("fuzz", idx_copy, idx_len, bin_copy, bin_len,
                                                vocabs[v], &idx);
        if (st != TSR_OK && st != TSR_ERR_FORMAT)
            abort(); /* memory errors aside, a bad file is a format error */
        if (st == TSR_OK)
            exercise(idx);
        tsr_indexed_close(idx);
    }
    free(idx_copy);
    free(bin_copy);
    return 0;
}
