/*
 * blend.c - --data-path parsing, Megatron's blending rule, and the file
 * dataset that ties readers, splits and packers together (see blend.h).
 *
 * The blend keeps, per block of BLOCK samples, the per-path counts at the
 * block's start (count x 8 bytes per block) and decodes one block at a
 * time: any sample i is recomputed from its block's checkpoint, so the
 * answer never depends on which samples were asked for before.
 */
#include "blend.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt_samples.h"
#include "hdf5_tokens.h"
#include "indexed.h"
#include "loss_mask.h"
#include "tessera/log.h"
#include "tessera/rng.h"

enum { BLOCK = 4096 };

static const char *const split_names[3] = {"train", "valid", "test"};

static int parse_weight(const char *word, double *out)
{
    char *end = NULL;
    double v = strtod(word, &end);
    if (end == word || *end != '\0' || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

tsr_status tsr_data_path_parse(const char *text, tsr_data_path *out)
{
    memset(out, 0, sizeof *out);
    out->storage = strdup(text);
    if (out->storage == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot copy --data-path");
    const char *words[2 * TSR_BLEND_MAX_PATHS];
    int n = 0;
    for (char *p = out->storage; *p != '\0';) {
        while (isspace((unsigned char)*p))
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (n == 2 * TSR_BLEND_MAX_PATHS) {
            tsr_data_path_free(out);
            return tsr_error_set(TSR_ERR_INVALID_ARG, "--data-path names more than %d files",
                                 TSR_BLEND_MAX_PATHS);
        }
        words[n++] = p;
        while (*p != '\0' && !isspace((unsigned char)*p))
            p++;
    }
    if (n == 1) {
        out->count = 1;
        out->weights[0] = 1.0;
        out->paths[0] = words[0];
        return TSR_OK;
    }
    double sum = 0.0;
    for (int i = 0; n > 0 && n % 2 == 0 && i < n; i += 2) {
        double w = 0.0;
        if (!parse_weight(words[i], &w) || !(w > 0.0)) {
            n = -1;
            break;
        }
        out->weights[i / 2] = w;
        out->paths[i / 2] = words[i + 1];
        sum += w;
    }
    if (n <= 0 || n % 2 != 0) {
        tsr_data_path_free(out);
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--data-path '%s': give one PREFIX (or FILE.h5), or pairs "
                             "WEIGHT PREFIX ... with positive weights, e.g. --data-path 0.3 "
                             "wiki_text_document 0.7 books_text_document",
                             text);
    }
    out->count = n / 2;
    for (int i = 0; i < out->count; i++)
        out->weights[i] /= sum;
    return TSR_OK;
}

void tsr_data_path_free(tsr_data_path *dp)
{
    free(dp->storage);
    dp->storage = NULL;
    dp->count = 0;
}

struct tsr_blend {
    int count;
    double *weights;
    int64_t *checkpoints; /* counts at the start of each known block */
    int64_t blocks_known, blocks_cap;
    int64_t cached_block;
    uint16_t path_of[BLOCK];
    int64_t index_of[BLOCK];
    int64_t *counts; /* scratch */
};

tsr_status tsr_blend_create(const double *weights, int count, tsr_blend **out)
{
    *out = NULL;
    if (count < 1 || count > TSR_BLEND_MAX_PATHS)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "a blend needs 1 to %d paths, got %d",
                             TSR_BLEND_MAX_PATHS, count);
    tsr_blend *b = calloc(1, sizeof *b);
    if (b != NULL) {
        b->weights = malloc((size_t)count * sizeof *b->weights);
        b->counts = malloc((size_t)count * sizeof *b->counts);
        b->blocks_cap = 64;
        b->checkpoints = calloc((size_t)b->blocks_cap * (size_t)count, sizeof *b->checkpoints);
    }
    if (b == NULL || b->weights == NULL || b->counts == NULL || b->checkpoints == NULL) {
        tsr_blend_destroy(b);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the blend tables");
    }
    memcpy(b->weights, weights, (size_t)count * sizeof *weights);
    b->count = count;
    b->blocks_known = 1; /* block 0 starts with every count at 0 */
    b->cached_block = -1;
    *out = b;
    return TSR_OK;
}

void tsr_blend_destroy(tsr_blend *b)
{
    if (b == NULL)
        return;
    free(b->weights);
    free(b->counts);
    free(b->checkpoints);
    free(b);
}

/* Runs the greedy rule over samples first .. first+BLOCK-1 from b->counts,
 * recording the choices when `record` is set. */
static void run_block(tsr_blend *b, int64_t first, int record)
{
    for (int64_t i = first; i < first + BLOCK; i++) {
        double x = i > 1 ? (double)i : 1.0;
        int best = 0;
        double best_error = b->weights[0] * x - (double)b->counts[0];
        for (int d = 1; d < b->count; d++) {
            double error = b->weights[d] * x - (double)b->counts[d];
            if (error > best_error) {
                best_error = error;
                best = d;
            }
        }
        if (record) {
            b->path_of[i - first] = (uint16_t)best;
            b->index_of[i - first] = b->counts[best];
        }
        b->counts[best]++;
    }
}

tsr_status tsr_blend_lookup(tsr_blend *b, int64_t i, int *path, int64_t *index)
{
    if (i < 0)
        return tsr_error_set(TSR_ERR_INTERNAL, "blend sample index %lld is negative",
                             (long long)i);
    int64_t block = i / BLOCK;
    size_t row = (size_t)b->count * sizeof *b->counts;
    while (b->blocks_known <= block) {
        if (b->blocks_known == b->blocks_cap) {
            int64_t cap = b->blocks_cap * 2;
            int64_t *p = realloc(b->checkpoints, (size_t)cap * row);
            if (p == NULL)
                return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot grow the blend tables");
            b->checkpoints = p;
            b->blocks_cap = cap;
        }
        int64_t known = b->blocks_known;
        memcpy(b->counts, b->checkpoints + (size_t)(known - 1) * (size_t)b->count, row);
        run_block(b, (known - 1) * BLOCK, 0);
        memcpy(b->checkpoints + (size_t)known * (size_t)b->count, b->counts, row);
        b->blocks_known++;
    }
    if (b->cached_block != block) {
        memcpy(b->counts, b->checkpoints + (size_t)block * (size_t)b->count, row);
        run_block(b, block * BLOCK, 1);
        b->cached_block = block;
    }
    *path = b->path_of[i % BLOCK];
    *index = b->index_of[i % BLOCK];
    return TSR_OK;
}

/* The file dataset. The tsr_dataset interface hands out const pointers;
 * the packers' epoch tables and the blend cache are reached through
 * `state`, which they may update. */
typedef struct file_state {
    tsr_data_path path;
    tsr_token_source *sources[TSR_BLEND_MAX_PATHS];
    tsr_gpt_samples *samples[3][TSR_BLEND_MAX_PATHS]; /* NULL: split holds no sample */
    char *why_empty[3];                               /* message for a NULL split */
    tsr_blend *blend[3];
    float *weights; /* seq_length + 1: a sample's loss mask, by token */
} file_state;

typedef struct file_dataset {
    tsr_dataset base; /* first: the interface pointer casts back */
    file_state *state;
} file_dataset;

static void state_free(file_state *s)
{
    if (s == NULL)
        return;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < s->path.count; i++)
            tsr_gpt_samples_destroy(s->samples[k][i]);
        tsr_blend_destroy(s->blend[k]);
        free(s->why_empty[k]);
    }
    for (int i = 0; i < s->path.count; i++)
        tsr_token_source_destroy(s->sources[i]);
    tsr_data_path_free(&s->path);
    free(s->weights);
    free(s);
}

static tsr_status file_sample(const tsr_dataset *ds, tsr_split split, int64_t index,
                              int32_t *tokens, float *mask)
{
    file_state *s = ((const file_dataset *)(const void *)ds)->state;
    int which = 0;
    int64_t local = index;
    tsr_status st = TSR_OK;
    if (s->path.count > 1)
        st = tsr_blend_lookup(s->blend[split], index, &which, &local);
    if (st != TSR_OK)
        return st;
    tsr_gpt_samples *samples = s->samples[split][which];
    if (samples == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s",
                             s->why_empty[split] ? s->why_empty[split] : "empty split");
    /* target i is token i + 1: its weight says whether the loss counts it */
    st = tsr_gpt_samples_get_weighted(samples, local, tokens, s->weights);
    for (int i = 0; st == TSR_OK && i < ds->seq_length; i++)
        mask[i] = s->weights[i + 1];
    return st;
}

static void file_destroy(tsr_dataset *ds)
{
    file_dataset *f = (file_dataset *)(void *)ds;
    state_free(f->state);
    free(f);
}

static const tsr_dataset_ops file_ops = {file_sample, file_destroy, NULL};

static tsr_status open_source(const char *path, int64_t vocab, tsr_token_source **out)
{
    if (tsr_hdf5_tokens_is_path(path))
        return tsr_hdf5_tokens_open(path, vocab, out);
    tsr_indexed *idx = NULL;
    tsr_status st = tsr_indexed_open(path, vocab, &idx);
    if (st == TSR_OK && tsr_loss_mask_present(path))
        return tsr_loss_mask_attach(path, idx, out);
    *out = st == TSR_OK ? tsr_indexed_source(idx) : NULL;
    return st;
}

/* Builds the packers of every path for one split. A split the run needs
 * must hold a sample in every path; another one may stay empty. */
static tsr_status open_split(file_state *s, const tsr_config *cfg, const double fractions[3],
                             int split, int required)
{
    uint64_t key = tsr_rng_key_mix(tsr_rng_key((uint64_t)cfg->seed, "gpt_samples"),
                                   (uint64_t)split);
    char what[64];
    snprintf(what, sizeof what, "split '%s' (--split %s)", split_names[split], cfg->split);
    for (int i = 0; i < s->path.count; i++) {
        int64_t bounds[4];
        tsr_split_bounds(fractions, s->sources[i]->documents, bounds);
        tsr_status st = tsr_gpt_samples_create(s->sources[i], bounds[split], bounds[split + 1],
                                               cfg->seq_length, key, what,
                                               &s->samples[split][i]);
        if (st == TSR_ERR_INVALID_ARG && !required) {
            if (s->why_empty[split] == NULL)
                s->why_empty[split] = strdup(tsr_last_error());
            tsr_error_clear();
            continue;
        }
        if (st != TSR_OK)
            return st;
        tsr_log(TSR_LOG_DEBUG, "%s: %s documents %lld..%lld, %lld tokens, %lld samples/epoch",
                s->path.paths[i], split_names[split], (long long)bounds[split],
                (long long)bounds[split + 1] - 1,
                (long long)tsr_gpt_samples_tokens(s->samples[split][i]),
                (long long)tsr_gpt_samples_per_epoch(s->samples[split][i]));
    }
    if (s->path.count > 1)
        return tsr_blend_create(s->path.weights, s->path.count, &s->blend[split]);
    return TSR_OK;
}

tsr_status tsr_file_dataset_open(const tsr_config *cfg, tsr_dataset **out)
{
    *out = NULL;
    if (cfg->vocab_size <= 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--data-path %s is a token file dataset: give --vocab-size, the "
                             "vocabulary size of the tokenizer that wrote it (e.g. 50257 for "
                             "GPT-2, 257 for `tessera preprocess --tokenizer-type byte`)",
                             cfg->data_path);
    double fractions[3];
    tsr_status st = tsr_split_parse(cfg->split, fractions);
    if (st != TSR_OK)
        return st;
    file_state *s = calloc(1, sizeof *s);
    file_dataset *f = calloc(1, sizeof *f);
    if (s == NULL || f == NULL) {
        free(s);
        free(f);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the dataset");
    }
    s->weights = malloc(((size_t)cfg->seq_length + 1) * sizeof *s->weights);
    st = s->weights != NULL ? tsr_data_path_parse(cfg->data_path, &s->path)
                            : tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate the dataset");
    for (int i = 0; st == TSR_OK && i < s->path.count; i++)
        st = open_source(s->path.paths[i], cfg->vocab_size, &s->sources[i]);
    for (int split = 0; st == TSR_OK && split < 3; split++)
        st = open_split(s, cfg, fractions, split,
                        split == TSR_SPLIT_TRAIN ||
                            (split == TSR_SPLIT_VALID && cfg->eval_interval > 0));
    if (st != TSR_OK) {
        state_free(s);
        free(f);
        return st;
    }
    f->state = s;
    f->base.ops = &file_ops;
    f->base.name = cfg->data_path;
    f->base.vocab_size = cfg->vocab_size;
    f->base.seq_length = cfg->seq_length;
    f->base.seed = (uint64_t)cfg->seed;
    f->base.eod = cfg->eod_token;
    for (int i = 0; i < s->path.count; i++)
        f->base.reads_hdf5 = f->base.reads_hdf5 || tsr_hdf5_tokens_is_path(s->path.paths[i]);
    *out = &f->base;
    return TSR_OK;
}
