/*
 * loss_mask.c - see loss_mask.h.
 */
#include "loss_mask.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

typedef struct masked_source {
    tsr_token_source base;
    tsr_token_source *tokens;
    tsr_indexed *mask;
    char name[1024];
} masked_source;

static void sidecar_prefix(const char *prefix, char *out, size_t len)
{
    snprintf(out, len, "%s%s", prefix, TSR_LOSS_MASK_SUFFIX);
}

bool tsr_loss_mask_present(const char *prefix)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s%s.idx", prefix, TSR_LOSS_MASK_SUFFIX);
    return stat(path, &sb) == 0;
}

static int64_t masked_length(const tsr_token_source *src, int64_t doc)
{
    const masked_source *m = (const masked_source *)(const void *)src;
    return m->tokens->ops->length(m->tokens, doc);
}

static tsr_status masked_read(const tsr_token_source *src, int64_t doc, int64_t offset,
                              int64_t count, int32_t *out)
{
    const masked_source *m = (const masked_source *)(const void *)src;
    return m->tokens->ops->read(m->tokens, doc, offset, count, out);
}

static tsr_status masked_weights(const tsr_token_source *src, int64_t doc, int64_t offset,
                                 int64_t count, float *out)
{
    const masked_source *m = (const masked_source *)(const void *)src;
    enum { CHUNK = 256 };
    int32_t bits[CHUNK];
    for (int64_t done = 0; done < count; done += CHUNK) {
        int64_t n = count - done < CHUNK ? count - done : CHUNK;
        tsr_status st = tsr_indexed_read(m->mask, doc, offset + done, n, bits);
        if (st != TSR_OK)
            return st;
        for (int64_t i = 0; i < n; i++)
            out[done + i] = (float)bits[i];
    }
    return TSR_OK;
}

static void masked_destroy(tsr_token_source *src)
{
    masked_source *m = (masked_source *)(void *)src;
    tsr_token_source_destroy(m->tokens);
    tsr_indexed_close(m->mask);
    free(m);
}

static const tsr_token_source_ops masked_ops = {masked_length, masked_read, masked_destroy,
                                                masked_weights};

static tsr_status check_shapes(const char *mask_name, const char *prefix, tsr_indexed *tokens,
                               tsr_indexed *mask)
{
    int64_t n = tsr_indexed_sequences(tokens);
    if (tsr_indexed_sequences(mask) != n)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s holds %lld sequences but %s holds %lld: the loss mask belongs "
                             "to other data; write both again with tessera preprocess --sft",
                             mask_name, (long long)tsr_indexed_sequences(mask), prefix,
                             (long long)n);
    for (int64_t s = 0; s < n; s++)
        if (tsr_indexed_length(mask, s) != tsr_indexed_length(tokens, s))
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "%s: sequence %lld has %lld mask values for %lld tokens in %s; "
                                 "the loss mask belongs to other data",
                                 mask_name, (long long)s, (long long)tsr_indexed_length(mask, s),
                                 (long long)tsr_indexed_length(tokens, s), prefix);
    return TSR_OK;
}

tsr_status tsr_loss_mask_attach(const char *prefix, tsr_indexed *tokens, tsr_token_source **out)
{
    *out = NULL;
    tsr_token_source *source = tsr_indexed_source(tokens);
    masked_source *m = calloc(1, sizeof *m);
    if (m == NULL) {
        tsr_token_source_destroy(source);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory opening %s", prefix);
    }
    m->tokens = source;
    sidecar_prefix(prefix, m->name, sizeof m->name);
    /* vocabulary 2: the open checks every value is 0 or 1 */
    tsr_status st = tsr_indexed_open(m->name, 2, &m->mask);
    if (st == TSR_OK)
        st = check_shapes(m->name, prefix, tokens, m->mask);
    if (st != TSR_OK) {
        masked_destroy(&m->base);
        return st;
    }
    m->base.ops = &masked_ops;
    m->base.name = source->name;
    m->base.documents = source->documents;
    *out = &m->base;
    return TSR_OK;
}
