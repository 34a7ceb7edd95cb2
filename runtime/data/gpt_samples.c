/*
 * gpt_samples.c - Megatron's --split and the packing of documents into
 * samples of seq_length+1 tokens (see gpt_samples.h for the contract).
 *
 * Invariant: `cum` holds the prefix sums of the document lengths of epoch
 * `epoch` in shuffled order (cum[0] = 0, cum[n] = tokens per epoch), so the
 * document holding token position p of that epoch is found by binary
 * search. Everything else is recomputed from keys, never stored.
 */
#include "gpt_samples.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/rng.h"

void tsr_token_source_destroy(tsr_token_source *src)
{
    if (src != NULL)
        src->ops->destroy(src);
}

tsr_status tsr_split_parse(const char *text, double fractions[3])
{
    char sep = strchr(text, ',') != NULL ? ',' : '/';
    double parts[3] = {0.0, 0.0, 0.0};
    const char *p = text;
    int count = 0;
    for (;;) {
        char *end = NULL;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || v < 0.0 || count == 3)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--split '%s': expected up to three non-negative proportions "
                                 "for train, valid and test, e.g. 969,30,1",
                                 text);
        parts[count++] = v;
        if (*end == '\0')
            break;
        if (*end != sep)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--split '%s': separate the proportions with commas, e.g. "
                                 "969,30,1",
                                 text);
        p = end + 1;
    }
    double sum = parts[0] + parts[1] + parts[2];
    if (!(sum > 0.0))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--split '%s': the proportions add up to 0; give the train share "
                             "a positive value",
                             text);
    for (int i = 0; i < 3; i++)
        fractions[i] = parts[i] / sum;
    return TSR_OK;
}

void tsr_split_bounds(const double fractions[3], int64_t documents, int64_t bounds[4])
{
    bounds[0] = 0;
    for (int i = 0; i < 3; i++) /* nearbyint: Python's round(), half to even */
        bounds[i + 1] = bounds[i] + (int64_t)nearbyint(fractions[i] * (double)documents);
    int64_t diff = bounds[3] - documents;
    for (int i = 1; i < 4; i++)
        bounds[i] -= diff;
    /* two halves rounded up can push a bound below the one before it
     * ("0,1,1" of 3 documents gives 0,-1,1,3 in Megatron): keep ranges
     * non-negative */
    for (int i = 1; i < 4; i++)
        if (bounds[i] < bounds[i - 1])
            bounds[i] = bounds[i - 1];
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* A balanced Feistel network over 2*half bits walks x out of [n, 4^half)
 * back into [0, n): the walk stays on x's cycle, which re-enters [0, n). */
uint64_t tsr_shuffle_index(uint64_t key, uint64_t n, uint64_t x)
{
    if (n <= 1)
        return 0;
    int half = 1;
    while (half < 32 && ((uint64_t)1 << (2 * half)) < n)
        half++;
    uint64_t mask = ((uint64_t)1 << half) - 1;
    do {
        uint64_t left = x >> half, right = x & mask;
        for (uint64_t round = 0; round < 6; round++) {
            uint64_t f = mix64(key ^ mix64(right + (round << 56))) & mask;
            uint64_t next = left ^ f;
            left = right;
            right = next;
        }
        x = (left << half) | right;
    } while (x >= n);
    return x;
}

struct tsr_gpt_samples {
    const tsr_token_source *src;
    int64_t first_doc, docs;
    int seq_length;
    uint64_t key;
    int64_t tokens;  /* per epoch */
    int64_t samples; /* per epoch */
    int64_t epoch;   /* whose table `cum` holds; -1 before the first */
    int64_t *cum;    /* docs+1 prefix sums */
};

static uint64_t doc_key(const tsr_gpt_samples *s, int64_t epoch)
{
    return tsr_rng_key_mix(tsr_rng_key_mix(s->key, 0xd0c5), (uint64_t)epoch);
}

static uint64_t sample_key(const tsr_gpt_samples *s, int64_t epoch)
{
    return tsr_rng_key_mix(tsr_rng_key_mix(s->key, 0x5a3b1e), (uint64_t)epoch);
}

static int64_t shuffled_doc(const tsr_gpt_samples *s, int64_t epoch, int64_t k)
{
    return s->first_doc +
           (int64_t)tsr_shuffle_index(doc_key(s, epoch), (uint64_t)s->docs, (uint64_t)k);
}

static void build_epoch(tsr_gpt_samples *s, int64_t epoch)
{
    s->cum[0] = 0;
    for (int64_t k = 0; k < s->docs; k++)
        s->cum[k + 1] = s->cum[k] + s->src->ops->length(s->src, shuffled_doc(s, epoch, k));
    s->epoch = epoch;
}

tsr_status tsr_gpt_samples_create(const tsr_token_source *src, int64_t first_doc,
                                  int64_t end_doc, int seq_length, uint64_t key,
                                  const char *what, tsr_gpt_samples **out)
{
    *out = NULL;
    if (first_doc < 0 || end_doc < first_doc || end_doc > src->documents || seq_length < 1)
        return tsr_error_set(TSR_ERR_INTERNAL, "%s: bad document range %lld..%lld of %s", what,
                             (long long)first_doc, (long long)end_doc, src->name);
    int64_t tokens = 0;
    for (int64_t d = first_doc; d < end_doc; d++)
        tokens += src->ops->length(src, d); /* sources bound the total by their file size */
    if (tokens < (int64_t)seq_length + 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s of %s holds %lld tokens in %lld documents, fewer than the %d "
                             "one sample needs (--seq-length + 1); use more data, a shorter "
                             "--seq-length or a larger share in --split",
                             what, src->name, (long long)tokens,
                             (long long)(end_doc - first_doc), seq_length + 1);
    tsr_gpt_samples *s = calloc(1, sizeof *s);
    if (s != NULL)
        s->cum = malloc((size_t)(end_doc - first_doc + 1) * sizeof *s->cum);
    if (s == NULL || s->cum == NULL) {
        free(s);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                             "cannot allocate the sample table of %s (%lld documents)",
                             src->name, (long long)(end_doc - first_doc));
    }
    s->src = src;
    s->first_doc = first_doc;
    s->docs = end_doc - first_doc;
    s->seq_length = seq_length;
    s->key = key;
    s->tokens = tokens;
    s->samples = (tokens - 1) / seq_length;
    s->epoch = -1;
    *out = s;
    return TSR_OK;
}

void tsr_gpt_samples_destroy(tsr_gpt_samples *s)
{
    if (s == NULL)
        return;
    free(s->cum);
    free(s);
}

int64_t tsr_gpt_samples_per_epoch(const tsr_gpt_samples *s)
{
    return s->samples;
}

int64_t tsr_gpt_samples_tokens(const tsr_gpt_samples *s)
{
    return s->tokens;
}

/* Index k of the shuffled document holding token position p: the last k
 * with cum[k] <= p, which is never an empty document. */
static int64_t find_doc(const tsr_gpt_samples *s, int64_t p)
{
    int64_t lo = 0, hi = s->docs; /* cum[lo] <= p < cum[hi] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->cum[mid] <= p)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

tsr_status tsr_gpt_samples_get(tsr_gpt_samples *s, int64_t index, int32_t *tokens)
{
    return tsr_gpt_samples_get_weighted(s, index, tokens, NULL);
}

tsr_status tsr_gpt_samples_get_weighted(tsr_gpt_samples *s, int64_t index, int32_t *tokens,
                                        float *weights)
{
    if (index < 0)
        return tsr_error_set(TSR_ERR_INTERNAL, "sample index %lld is negative",
                             (long long)index);
    int64_t epoch = index / s->samples;
    int64_t j = (int64_t)tsr_shuffle_index(sample_key(s, epoch), (uint64_t)s->samples,
                                           (uint64_t)(index % s->samples));
    if (epoch != s->epoch)
        build_epoch(s, epoch);
    int64_t p = j * s->seq_length; /* p + seq_length + 1 <= tokens by the sample count */
    int64_t need = (int64_t)s->seq_length + 1;
    for (int64_t k = find_doc(s, p), done = 0; done < need; k++) {
        int64_t offset = p + done - s->cum[k];
        int64_t avail = s->cum[k + 1] - s->cum[k] - offset;
        if (avail <= 0)
            continue; /* an empty document */
        int64_t take = avail < need - done ? avail : need - done;
        int64_t doc = shuffled_doc(s, epoch, k);
        tsr_status st = s->src->ops->read(s->src, doc, offset, take, tokens + done);
        if (st == TSR_OK && weights != NULL && s->src->ops->read_loss_mask != NULL)
            st = s->src->ops->read_loss_mask(s->src, doc, offset, take, weights + done);
        else if (weights != NULL)
            for (int64_t i = 0; i < take; i++)
                weights[done + i] = 1.0f;
        if (st != TSR_OK)
            return st;
        done += take;
    }
    return TSR_OK;
}
