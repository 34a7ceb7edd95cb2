/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader
 * (runtime/checkpoint/safetensors.c): the input is a whole file.
 *
 * It is copied into an allocation of exactly its size, so that
 * AddressSanitizer sees any read past the file's end. Every input must end
 * in TSR_OK or TSR_ERR_FORMAT (TSR_ERR_OUT_OF_MEMORY only for a header
 * jansson cannot hold); an accepted file then has every tensor converted
 * to fp32 from its bytes, which the header checks must have kept inside
 * the data section. Built with clang -fsanitize=fuzzer (TSR_BUILD_FUZZ=ON)
 * and, for CI, replayed over tests/fuzz/corpus/safetensors by replay.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    tsr_st_file f;
    tsr_status st = tsr_st_parse_bytes(copy, size, "fuzz.safetensors", &f);
    if (st != TSR_OK && st != TSR_ERR_FORMAT && st != TSR_ERR_OUT_OF_MEMORY)
        abort();
    float out[1024];
    for (size_t i = 0; st == TSR_OK && i < f.count; i++) {
        const tsr_st_tensor *t = &f.tensors[i];
        if (t->end < t->begin || t->end > f.data_size || f.data_start + f.data_size != size)
            abort();
        size_t esize = tsr_st_dtype_size(t->dtype);
        if ((uint64_t)t->numel * esize != t->end - t->begin)
            abort();
        for (int64_t done = 0; done < t->numel; done += 1024) {
            int64_t n = t->numel - done < 1024 ? t->numel - done : 1024;
            tsr_st_to_f32(t->dtype, copy + f.data_start + t->begin + (uint64_t)done * esize, n,
                          out);
        }
        if (tsr_st_find(&f, t->name) == NULL)
            abort();
    }
    if (st == TSR_OK)
        tsr_st_close(&f);
    free(copy);
    return 0;
}
