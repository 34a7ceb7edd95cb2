/*
 * config_attention.c - the attention pattern of each layer, from
 * --attention-pattern (one entry per layer, with repetition) or, without
 * it, from --window-size / --sparse-attention for every layer.
 *
 * Grammar: list := item ("," item)*;  item := atom ("*" N)?;
 *          atom := NAME | "(" list ")";  NAME := dense | window | sparse |
 *          fixed | strided. "(dense,window)*6" is 12 layers alternating as
 * GPT-3's dense and banded layers do. The expansion is walked, not stored,
 * so a configuration check never allocates.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/config.h"
#include "tessera/kernels.h"

typedef enum entry { ENTRY_DENSE, ENTRY_WINDOW, ENTRY_SPARSE, ENTRY_FIXED, ENTRY_STRIDED } entry;

static const char *const entry_names[] = {"dense", "window", "sparse", "fixed", "strided"};

/* The walk: counts entries, remembers the one at `want`. */
typedef struct walk {
    const char *text; /* the whole flag value, for messages */
    const char *p;
    int64_t count, want, limit; /* the walk stops repeating past limit entries */
    entry found;
    int depth;
} walk;

static tsr_status bad(const walk *w, const char *what)
{
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "--attention-pattern '%s': %s at offset %d; write one entry per layer "
                         "from dense, window, sparse, fixed, strided, with NAME*N or "
                         "(LIST)*N to repeat, e.g. (dense,window)*6",
                         w->text, what, (int)(w->p - w->text));
}

static void skip_space(walk *w)
{
    while (isspace((unsigned char)*w->p))
        w->p++;
}

static tsr_status parse_list(walk *w);

/* "*N" after an atom, or nothing (1) */
static tsr_status parse_repeat(walk *w, long *times)
{
    skip_space(w);
    *times = 1;
    if (*w->p != '*')
        return TSR_OK;
    w->p++;
    skip_space(w);
    char *end = NULL;
    long n = strtol(w->p, &end, 10);
    if (end == w->p || n < 1 || n > 1000000)
        return bad(w, "a repeat count (a whole number from 1) must follow '*'");
    w->p = end;
    *times = n;
    return TSR_OK;
}

static tsr_status parse_item(walk *w)
{
    skip_space(w);
    if (*w->p == '(') {
        const char *open = w->p + 1;
        w->p = open;
        w->depth++;
        if (w->depth > 16)
            return bad(w, "parentheses nested too deeply");
        tsr_status st = parse_list(w);
        if (st != TSR_OK)
            return st;
        if (*w->p != ')')
            return bad(w, "')' expected");
        w->p++;
        long times = 1;
        if ((st = parse_repeat(w, &times)) != TSR_OK)
            return st;
        const char *resume = w->p;
        for (long k = 1; k < times && w->count <= w->limit; k++) {
            w->p = open; /* walk the group again */
            if ((st = parse_list(w)) != TSR_OK)
                return st;
        }
        w->p = resume;
        w->depth--;
        return TSR_OK;
    }
    size_t n = 0;
    while (isalpha((unsigned char)w->p[n]))
        n++;
    int kind = -1;
    for (int k = 0; k < 5; k++)
        if (strlen(entry_names[k]) == n && strncmp(w->p, entry_names[k], n) == 0)
            kind = k;
    if (kind < 0)
        return bad(w, n == 0 ? "an entry name or '(' expected" : "unknown entry");
    w->p += n;
    long times = 1;
    tsr_status st = parse_repeat(w, &times);
    if (st != TSR_OK)
        return st;
    if (w->want >= w->count && w->want < w->count + times)
        w->found = (entry)kind;
    w->count += times;
    return TSR_OK;
}

static tsr_status parse_list(walk *w)
{
    for (;;) {
        tsr_status st = parse_item(w);
        if (st != TSR_OK)
            return st;
        skip_space(w);
        if (*w->p != ',')
            return TSR_OK;
        w->p++;
    }
}

/* The entry of `layer` and the number of entries in all. */
static tsr_status pattern_entry(const tsr_config *cfg, int64_t layer, entry *out, int64_t *total)
{
    walk w = {cfg->attention_pattern, cfg->attention_pattern, 0, layer, cfg->num_layers,
              ENTRY_DENSE, 0};
    tsr_status st = parse_list(&w);
    if (st == TSR_OK && *w.p != '\0')
        st = bad(&w, "',' or the end expected");
    *out = w.found;
    *total = w.count;
    return st;
}

static tsr_status sparse_of(const tsr_config *cfg, tsr_attn_mask *out, tsr_sparse_attention kind)
{
    out->pattern = kind == TSR_SPARSE_STRIDED ? TSR_ATTN_STRIDED : TSR_ATTN_FIXED;
    out->block = cfg->sparse_block;
    out->stride = cfg->sparse_stride;
    return TSR_OK;
}

tsr_status tsr_config_layer_attention(const tsr_config *cfg, int64_t layer, tsr_attn_mask *out)
{
    memset(out, 0, sizeof *out);
    out->pattern = TSR_ATTN_CAUSAL;
    if (cfg->attention_pattern == NULL) {
        if (cfg->window_size > 0 && cfg->sparse_attention != TSR_SPARSE_NONE)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--window-size and --sparse-attention both apply to every "
                                 "layer; choose one, or give each layer its pattern with "
                                 "--attention-pattern (e.g. window,sparse)");
        if (cfg->window_size > 0) {
            out->pattern = TSR_ATTN_WINDOW;
            out->window = cfg->window_size;
        } else if (cfg->sparse_attention != TSR_SPARSE_NONE) {
            sparse_of(cfg, out, cfg->sparse_attention);
        }
        return TSR_OK;
    }
    entry e;
    int64_t total;
    tsr_status st = pattern_entry(cfg, layer, &e, &total);
    if (st != TSR_OK)
        return st;
    if (total != cfg->num_layers)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--attention-pattern '%s' has %s%lld %s for --num-layers %d; "
                             "give exactly one per layer (repeat with NAME*N or (LIST)*N, e.g. "
                             "(dense,window)*%d for alternating layers)",
                             cfg->attention_pattern, total > cfg->num_layers ? "more than " : "",
                             (long long)(total > cfg->num_layers ? cfg->num_layers : total),
                             total == 1 ? "entry" : "entries", cfg->num_layers,
                             cfg->num_layers / 2 > 0 ? cfg->num_layers / 2 : 1);
    switch (e) {
    case ENTRY_DENSE:
        return TSR_OK;
    case ENTRY_WINDOW:
        if (cfg->window_size <= 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--attention-pattern has window layers but --window-size is "
                                 "not set; give --window-size W");
        out->pattern = TSR_ATTN_WINDOW;
        out->window = cfg->window_size;
        return TSR_OK;
    case ENTRY_SPARSE:
        if (cfg->sparse_attention == TSR_SPARSE_NONE)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--attention-pattern has sparse layers but --sparse-attention "
                                 "is not set; give --sparse-attention fixed|strided, or name "
                                 "the layers fixed or strided");
        return sparse_of(cfg, out, cfg->sparse_attention);
    case ENTRY_FIXED:
        return sparse_of(cfg, out, TSR_SPARSE_FIXED);
    case ENTRY_STRIDED:
        return sparse_of(cfg, out, TSR_SPARSE_STRIDED);
    }
    return TSR_OK;
}

double tsr_config_attention_elements(const tsr_config *cfg, int64_t first, int64_t count,
                                     int64_t t)
{
    double elements = 0.0, last_elements = 0.0;
    tsr_attn_mask last;
    bool counted = false;
    for (int64_t l = first; l < first + count; l++) {
        tsr_attn_mask mask;
        if (tsr_config_layer_attention(cfg, l, &mask) != TSR_OK)
            continue;
        /* the per-query arrays are NULL: equal bytes, equal pattern */
        if (!counted || memcmp(&mask, &last, sizeof mask) != 0) {
            last = mask;
            last_elements = tsr_attention_computed_elements(&mask, t);
            counted = true;
        }
        elements += last_elements;
    }
    return elements;
}
