/*
 * tokenizer.c - byte-level and GPT-2 BPE tokenizers (see tokenizer.h); the
 * pieces BPE runs on are cut by tokenizer_pretok.c.
 *
 * The vocabulary is a hash table from token bytes (the UTF-8 of GPT-2's
 * byte symbols) to ids; merges are a hash table from an id pair to its
 * rank and the merged id, so BPE runs on integers. A piece is merged with
 * a min-heap of (rank, position) candidates over a linked list of
 * symbols: stale candidates are dropped when popped. Popping equal ranks
 * in position order merges every occurrence of the lowest pair left to
 * right, which is what the original encoder's loop does, in
 * O(n log n) instead of O(n^2) for long pieces.
 */
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_check.h"
#include "tokenizer_internal.h"
#include "tokenizer_json.h"

/* ---- helpers shared by both kinds ------------------------------------ */

tsr_status tsr_token_buffer_push(tsr_token_buffer *b, int32_t id)
{
    if (b->count == b->cap) {
        int64_t cap = b->cap > 0 ? b->cap * 2 : 1024;
        int32_t *p = realloc(b->ids, (size_t)cap * sizeof *p);
        if (p == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot grow a token buffer");
        b->ids = p;
        b->cap = cap;
    }
    b->ids[b->count++] = id;
    return TSR_OK;
}

void tsr_token_buffer_free(tsr_token_buffer *b)
{
    free(b->ids);
    b->ids = NULL;
    b->count = b->cap = 0;
}

uint32_t tsr_gpt2_byte_symbol(unsigned char b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    /* the others, in byte order, take U+0100, U+0101, ... */
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
            n++;
    return 256 + n;
}

/* ---- hash tables ------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t hash_pair(uint64_t pair)
{
    pair ^= pair >> 33;
    pair *= 0xff51afd7ed558ccdULL;
    pair ^= pair >> 33;
    return pair;
}

static vocab_slot *vocab_find(const tsr_tokenizer *t, const char *s, size_t n)
{
    size_t mask = t->vocab_cap - 1;
    for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        vocab_slot *slot = &t->vocab[i];
        if (slot->key_off < 0 ||
            (slot->key_len == n && memcmp(t->keys + slot->key_off, s, n) == 0))
            return slot;
    }
}

static int32_t vocab_id(const tsr_tokenizer *t, const char *s, size_t n)
{
    const vocab_slot *slot = vocab_find(t, s, n);
    return slot->key_off < 0 ? -1 : slot->id;
}

static int vocab_grow(tsr_tokenizer *t)
{
    size_t cap = t->vocab_cap ? t->vocab_cap * 2 : 1024;
    vocab_slot *old = t->vocab;
    size_t old_cap = t->vocab_cap;
    t->vocab = malloc(cap * sizeof *t->vocab);
    if (t->vocab == NULL) {
        t->vocab = old;
        return 0;
    }
    for (size_t i = 0; i < cap; i++)
        t->vocab[i].key_off = -1;
    t->vocab_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key_off >= 0)
            *vocab_find(t, t->keys + old[i].key_off, old[i].key_len) = old[i];
    free(old);
    return 1;
}

/* 1 inserted, 0 duplicate, -1 out of memory */
static int vocab_insert(tsr_tokenizer *t, const char *s, size_t n, int32_t id)
{
    if ((t->vocab_count + 1) * 2 > t->vocab_cap && !vocab_grow(t))
        return -1;
    vocab_slot *slot = vocab_find(t, s, n);
    if (slot->key_off >= 0)
        return 0;
    /* allocated even for an empty first key: t->keys + 0 must not be NULL + 0 */
    if (t->keys == NULL || t->keys_len + (int64_t)n > t->keys_cap) {
        int64_t cap = t->keys_cap ? t->keys_cap : 4096;
        while (cap < t->keys_len + (int64_t)n)
            cap *= 2;
        char *p = realloc(t->keys, (size_t)cap);
        if (p == NULL)
            return -1;
        t->keys = p;
        t->keys_cap = cap;
    }
    memcpy(t->keys + t->keys_len, s, n);
    slot->key_off = t->keys_len;
    slot->key_len = (uint32_t)n;
    slot->id = id;
    t->keys_len += (int64_t)n;
    t->vocab_count++;
    return 1;
}

static merge_slot *merge_find(const tsr_tokenizer *t, uint64_t pair)
{
    size_t mask = t->merges_cap - 1;
    for (size_t i = hash_pair(pair) & mask;; i = (i + 1) & mask)
        if (t->merges[i].pair == UINT64_MAX || t->merges[i].pair == pair)
            return &t->merges[i];
}

static int merge_grow(tsr_tokenizer *t)
{
    size_t cap = t->merges_cap ? t->merges_cap * 2 : 1024;
    merge_slot *old = t->merges;
    size_t old_cap = t->merges_cap;
    t->merges = malloc(cap * sizeof *t->merges);
    if (t->merges == NULL) {
        t->merges = old;
        return 0;
    }
    for (size_t i = 0; i < cap; i++)
        t->merges[i].pair = UINT64_MAX;
    t->merges_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].pair != UINT64_MAX)
            *merge_find(t, old[i].pair) = old[i];
    free(old);
    return 1;
}

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

static const merge_slot *merge_lookup(const tsr_tokenizer *t, int32_t left, int32_t right)
{
    if (t->merges_cap == 0)
        return NULL;
    const merge_slot *slot = merge_find(t, pair_key(left, right));
    return slot->pair == UINT64_MAX ? NULL : slot;
}

/* ---- loading ----------------------------------------------------------- */

static tsr_status load_vocab(tsr_tokenizer *t, const char *text, size_t len, const char *name)
{
    tsr_json j;
    tsr_json_init(&j, text, len, name);
    tsr_json_text key = {0};
    tsr_status st = tsr_json_expect(&j, '{', "vocab.json must be one object of token -> id");
    if (st == TSR_OK && tsr_json_peek(&j) == '}')
        st = tsr_error_set(TSR_ERR_FORMAT, "%s: the vocabulary is empty", name);
    while (st == TSR_OK) {
        int64_t id = 0;
        st = tsr_json_string(&j, &key);
        if (st == TSR_OK)
            st = tsr_json_expect(&j, ':', "expected ':' after a token");
        if (st == TSR_OK)
            st = tsr_json_integer(&j, 0, INT32_MAX - 1, &id);
        if (st != TSR_OK)
            break;
        int added = key.len > UINT32_MAX ? -1 : vocab_insert(t, key.data, key.len, (int32_t)id);
        if (added < 0)
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "%s: cannot hold the vocabulary", name);
        else if (added == 0)
            st = tsr_error_set(TSR_ERR_FORMAT, "%s: the token \"%.40s\" appears twice", name,
                               key.data);
        if (st != TSR_OK)
            break;
        if (id + 1 > t->vocab_size)
            t->vocab_size = id + 1;
        int c = tsr_json_peek(&j);
        if (c == '}') {
            j.pos++;
            st = tsr_json_end(&j);
            break;
        }
        st = tsr_json_expect(&j, ',', "expected ',' or '}' after an id");
    }
    tsr_json_text_free(&key);
    return st;
}

static int symbol_utf8(unsigned char b, char out[2])
{
    uint32_t cp = tsr_gpt2_byte_symbol(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static tsr_status load_merges(tsr_tokenizer *t, const char *text, size_t len, const char *name)
{
    int32_t rank = 0;
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        line_no++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (line_no == 1 && n >= 8 && memcmp(line, "#version", 8) == 0)
            continue;
        size_t a = 0; /* split into exactly two words on spaces/tabs */
        while (a < n && (line[a] == ' ' || line[a] == '\t'))
            a++;
        if (a == n)
            continue; /* blank line */
        size_t a_end = a;
        while (a_end < n && line[a_end] != ' ' && line[a_end] != '\t')
            a_end++;
        size_t b = a_end;
        while (b < n && (line[b] == ' ' || line[b] == '\t'))
            b++;
        size_t b_end = b;
        while (b_end < n && line[b_end] != ' ' && line[b_end] != '\t')
            b_end++;
        size_t rest = b_end;
        while (rest < n && (line[rest] == ' ' || line[rest] == '\t'))
            rest++;
        if (b == n || rest != n)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "%s line %zu: a merge is two tokens separated by a space, "
                                 "e.g. \"h e\"",
                                 name, line_no);
        int32_t left = vocab_id(t, line + a, a_end - a);
        int32_t right = vocab_id(t, line + b, b_end - b);
        char joined[512];
        size_t jl = (a_end - a) + (b_end - b);
        int32_t merged = -1;
        if (jl <= sizeof joined) {
            memcpy(joined, line + a, a_end - a);
            memcpy(joined + (a_end - a), line + b, b_end - b);
            merged = vocab_id(t, joined, jl);
        }
        if (left < 0 || right < 0 || merged < 0)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "%s line %zu: the merge \"%.*s %.*s\" uses or makes a token "
                                 "vocab.json does not hold; the files do not belong together",
                                 name, line_no, (int)(a_end - a > 60 ? 60 : a_end - a),
                                 line + a, (int)(b_end - b > 60 ? 60 : b_end - b), line + b);
        if ((t->merges_count + 1) * 2 > t->merges_cap && !merge_grow(t))
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "%s: cannot hold the merges", name);
        merge_slot *slot = merge_find(t, pair_key(left, right));
        if (slot->pair == UINT64_MAX)
            t->merges_count++;
        /* a repeated pair keeps its last rank, as dict(zip(merges, ranks)) does */
        slot->pair = pair_key(left, right);
        slot->rank = rank++;
        slot->merged = merged;
    }
    return TSR_OK;
}

tsr_status tsr_tokenizer_byte(tsr_tokenizer **out)
{
    tsr_tokenizer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a tokenizer");
    t->kind = KIND_BYTE;
    t->vocab_size = BYTE_EOD + 1;
    t->eod = BYTE_EOD;
    *out = t;
    return TSR_OK;
}

tsr_status tsr_tokenizer_gpt2_load(const char *vocab, size_t vocab_len, const char *vocab_name,
                                   const char *merges, size_t merges_len,
                                   const char *merges_name, tsr_tokenizer **out)
{
    *out = NULL;
    tsr_tokenizer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a tokenizer");
    t->kind = KIND_GPT2;
    tsr_status st = load_vocab(t, vocab, vocab_len, vocab_name);
    if (st == TSR_OK)
        st = load_merges(t, merges, merges_len, merges_name);
    if (st != TSR_OK) {
        tsr_tokenizer_destroy(t);
        return st;
    }
    for (int b = 0; b < 256; b++) {
        char s[2];
        t->byte_id[b] = vocab_id(t, s, (size_t)symbol_utf8((unsigned char)b, s));
    }
    t->eod = vocab_id(t, "<|endoftext|>", 13);
    *out = t;
    return TSR_OK;
}

static tsr_status read_file(const char *path, const char *what, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = -1;
    tsr_status st = tsr_file_open_input(path, what, &fd);
    if (st != TSR_OK)
        return st;
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        close(fd);
        return tsr_error_set(TSR_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *p = realloc(buf, cap * 2);
        if (p == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p;
        cap *= 2;
    }
    if (buf == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot hold %s in memory", path);
    else if (ferror(f))
        st = tsr_error_set(TSR_ERR_IO, "cannot read %s", path);
    fclose(f);
    if (st != TSR_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return TSR_OK;
}

tsr_status tsr_tokenizer_gpt2_open(const char *vocab_file, const char *merges_file,
                                   tsr_tokenizer **out)
{
    *out = NULL;
    char *vocab = NULL, *merges = NULL;
    size_t vocab_len = 0, merges_len = 0;
    tsr_status st = read_file(vocab_file, "vocab file", &vocab, &vocab_len);
    if (st == TSR_OK)
        st = read_file(merges_file, "merges file", &merges, &merges_len);
    if (st == TSR_OK)
        st = tsr_tokenizer_gpt2_load(vocab, vocab_len, vocab_file, merges, merges_len,
                                     merges_file, out);
    free(vocab);
    free(merges);
    return st;
}

void tsr_tokenizer_destroy(tsr_tokenizer *t)
{
    if (t == NULL)
        return;
    free(t->keys);
    free(t->vocab);
    free(t->merges);
    free(t->sym);
    free(t->next);
    free(t->prev);
    free(t->heap);
    free(t);
}

int64_t tsr_tokenizer_vocab_size(const tsr_tokenizer *t)
{
    return t->vocab_size;
}

int32_t tsr_tokenizer_eod(const tsr_tokenizer *t)
{
    return t->eod;
}

/* ---- encoding ---------------------------------------------------------- */

static int entry_less(heap_entry a, heap_entry b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_entry *h, size_t *n, heap_entry e)
{
    size_t i = (*n)++;
    while (i > 0 && entry_less(e, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static heap_entry heap_pop(heap_entry *h, size_t *n)
{
    heap_entry top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && entry_less(h[c + 1], h[c]))
            c++;
        if (!entry_less(h[c], last))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static int reserve_scratch(tsr_tokenizer *t, size_t n)
{
    if (n <= t->scratch_cap)
        return 1;
    size_t cap = t->scratch_cap ? t->scratch_cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *sym = realloc(t->sym, cap * sizeof *sym);
    if (sym != NULL)
        t->sym = sym;
    int32_t *next = realloc(t->next, cap * sizeof *next);
    if (next != NULL)
        t->next = next;
    int32_t *prev = realloc(t->prev, cap * sizeof *prev);
    if (prev != NULL)
        t->prev = prev;
    /* every symbol adds at most two candidates besides the initial n-1 */
    heap_entry *heap = realloc(t->heap, 3 * cap * sizeof *heap);
    if (heap != NULL)
        t->heap = heap;
    if (sym == NULL || next == NULL || prev == NULL || heap == NULL)
        return 0;
    t->scratch_cap = cap;
    return 1;
}

static void push_candidate(tsr_tokenizer *t, size_t *heap_n, int32_t pos)
{
    if (pos < 0 || t->next[pos] < 0)
        return;
    const merge_slot *m = merge_lookup(t, t->sym[pos], t->sym[t->next[pos]]);
    if (m != NULL)
        heap_push(t->heap, heap_n, (heap_entry){m->rank, pos});
}

static tsr_status encode_piece(tsr_tokenizer *t, const unsigned char *s, size_t n,
                               tsr_token_buffer *out)
{
    if (n > INT32_MAX / 4)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "a word of %zu bytes without spaces is too long to tokenize", n);
    if (!reserve_scratch(t, n))
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot tokenize a word of %zu bytes", n);
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[s[i]];
        if (id < 0)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "byte 0x%02X of the text has no token in vocab.json (GPT-2 "
                                 "vocabularies hold all 256 byte symbols)",
                                 s[i]);
        t->sym[i] = id;
        t->next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        t->prev[i] = (int32_t)i - 1;
    }
    size_t heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_candidate(t, &heap_n, (int32_t)i);
    while (heap_n > 0) {
        heap_entry e = heap_pop(t->heap, &heap_n);
        int32_t right = t->next[e.pos];
        if (t->sym[e.pos] < 0 || right < 0)
            continue; /* the left symbol was merged away, or has no right one now */
        const merge_slot *m = merge_lookup(t, t->sym[e.pos], t->sym[right]);
        if (m == NULL || m->rank != e.rank)
            continue; /* stale: the pair changed since it was queued */
        t->sym[e.pos] = m->merged;
        t->sym[right] = -1;
        t->next[e.pos] = t->next[right];
        if (t->next[right] >= 0)
            t->prev[t->next[right]] = e.pos;
        push_candidate(t, &heap_n, t->prev[e.pos]);
        push_candidate(t, &heap_n, e.pos);
    }
    for (int32_t i = 0; i >= 0; i = t->next[i]) {
        tsr_status st = tsr_token_buffer_push(out, t->sym[i]);
        if (st != TSR_OK)
            return st;
    }
    return TSR_OK;
}

tsr_status tsr_tokenizer_encode(tsr_tokenizer *t, const char *text, size_t len,
                                tsr_token_buffer *out)
{
    if (t->kind == KIND_BYTE) {
        for (size_t i = 0; i < len; i++) {
            tsr_status st = tsr_token_buffer_push(out, (unsigned char)text[i]);
            if (st != TSR_OK)
                return st;
        }
        return TSR_OK;
    }
    for (size_t pos = 0; pos < len;) {
        size_t end = tsr_pretokenize_next(text, len, pos);
        tsr_status st = encode_piece(t, (const unsigned char *)text + pos, end - pos, out);
        if (st != TSR_OK)
            return st;
        pos = end;
    }
    return TSR_OK;
}
