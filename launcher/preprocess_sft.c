/*
 * preprocess_sft.c - see preprocess_sft.h.
 */
#include "preprocess_sft.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/indexed.h"
#include "data/loss_mask.h"

typedef struct writer_pair {
    tsr_indexed_writer *tokens, *mask;
    tsr_token_buffer ids, bits;
} writer_pair;

/* Appends text's tokens to the conversation, each with weight `trained`. */
static tsr_status piece(tsr_sft_job *job, writer_pair *w, const char *text, size_t len,
                        bool trained)
{
    int64_t before = w->ids.count;
    tsr_status st = tsr_tokenizer_encode(job->tok, text, len, &w->ids);
    for (int64_t i = before; st == TSR_OK && i < w->ids.count; i++)
        st = tsr_token_buffer_push(&w->bits, trained ? 1 : 0);
    return st;
}

static tsr_status field(json_t *obj, const char *key, const char *where, const char **text,
                        size_t *len)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return tsr_error_set(TSR_ERR_FORMAT, "%s has no string \"%s\"%s", where, key,
                             v == NULL ? " (set --prompt-key / --response-key, or give "
                                         "--chat-template for \"messages\" lists)"
                                       : "");
    *text = json_string_value(v);
    *len = json_string_length(v);
    return TSR_OK;
}

static tsr_status prompt_response(tsr_sft_job *job, writer_pair *w, json_t *obj,
                                  const char *where)
{
    const char *p = NULL, *r = NULL;
    size_t pn = 0, rn = 0;
    tsr_status st = field(obj, job->prompt_key, where, &p, &pn);
    if (st == TSR_OK)
        st = field(obj, job->response_key, where, &r, &rn);
    if (st == TSR_OK)
        st = piece(job, w, p, pn, false);
    if (st == TSR_OK)
        st = piece(job, w, r, rn, true);
    return st;
}

/* ChatML: "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message; an
 * assistant's content and end marker are trained on. */
static tsr_status chatml(tsr_sft_job *job, writer_pair *w, json_t *obj, const char *where)
{
    json_t *messages = json_object_get(obj, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s has no non-empty \"messages\" list (--chat-template chatml "
                             "reads [{\"role\": ..., \"content\": ...}, ...])",
                             where);
    size_t i;
    json_t *m;
    tsr_status st = TSR_OK;
    json_array_foreach(messages, i, m)
    {
        const char *role = NULL, *content = NULL;
        size_t rn = 0, cn = 0;
        char at[600];
        snprintf(at, sizeof at, "%s, message %zu,", where, i);
        st = json_is_object(m) ? field(m, "role", at, &role, &rn)
                               : tsr_error_set(TSR_ERR_FORMAT, "%s is not an object", at);
        if (st == TSR_OK)
            st = field(m, "content", at, &content, &cn);
        bool assistant = st == TSR_OK && strcmp(role, "assistant") == 0;
        if (st == TSR_OK)
            st = piece(job, w, "<|im_start|>", 12, false);
        if (st == TSR_OK)
            st = piece(job, w, role, rn, false);
        if (st == TSR_OK)
            st = piece(job, w, "\n", 1, false);
        if (st == TSR_OK)
            st = piece(job, w, content, cn, assistant);
        if (st == TSR_OK)
            st = piece(job, w, "<|im_end|>\n", 11, assistant);
        if (st != TSR_OK)
            break;
    }
    return st;
}

static tsr_status conversation(tsr_sft_job *job, writer_pair *w, const char *line, size_t len,
                               const char *where)
{
    json_error_t err;
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        return tsr_error_set(TSR_ERR_FORMAT, "%s is not one JSON object: %s", where,
                             obj == NULL ? err.text : "another JSON value");
    }
    w->ids.count = w->bits.count = 0;
    tsr_status st = job->chat_template == TSR_CHAT_CHATML ? chatml(job, w, obj, where)
                                                          : prompt_response(job, w, obj, where);
    json_decref(obj);
    if (st == TSR_OK && w->ids.count > 0 && job->append_eod) {
        st = tsr_token_buffer_push(&w->ids, tsr_tokenizer_eod(job->tok));
        if (st == TSR_OK)
            st = tsr_token_buffer_push(&w->bits, 1);
    }
    if (st == TSR_OK && w->ids.count > 0) { /* no empty sequence, as Megatron */
        st = tsr_indexed_writer_add(w->tokens, w->ids.ids, w->ids.count);
        if (st == TSR_OK)
            st = tsr_indexed_writer_add(w->mask, w->bits.ids, w->bits.count);
    }
    if (st == TSR_OK)
        st = tsr_indexed_writer_end_document(w->tokens);
    if (st == TSR_OK)
        st = tsr_indexed_writer_end_document(w->mask);
    for (int64_t i = 0; st == TSR_OK && i < w->bits.count; i++)
        job->trained_tokens += w->bits.ids[i];
    job->tokens += w->ids.count;
    return st;
}

static tsr_status read_all(tsr_sft_job *job, writer_pair *w)
{
    FILE *in = fopen(job->input, "rb");
    if (in == NULL)
        return tsr_error_set(errno == ENOENT ? TSR_ERR_INVALID_ARG : TSR_ERR_IO,
                             "cannot open --input %s: %s", job->input, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    tsr_status st = TSR_OK;
    for (int64_t line_no = 1; st == TSR_OK && (n = getline(&line, &cap, in)) >= 0; line_no++) {
        size_t len = (size_t)n, blank = 0;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        while (blank < len && (line[blank] == ' ' || line[blank] == '\t'))
            blank++;
        if (blank == len)
            continue;
        char where[512];
        snprintf(where, sizeof where, "%s line %lld", job->input, (long long)line_no);
        st = conversation(job, w, line, len, where);
        job->conversations++;
    }
    if (st == TSR_OK && ferror(in))
        st = tsr_error_set(TSR_ERR_IO, "cannot read %s", job->input);
    free(line);
    fclose(in);
    return st;
}

tsr_status tsr_preprocess_sft(tsr_sft_job *job)
{
    writer_pair w = {0};
    char mask_prefix[4096];
    snprintf(mask_prefix, sizeof mask_prefix, "%s%s", job->prefix, TSR_LOSS_MASK_SUFFIX);
    int64_t vocab = tsr_tokenizer_vocab_size(job->tok);
    tsr_status st = tsr_indexed_writer_open(job->prefix, tsr_indexed_best_dtype(vocab), &w.tokens);
    if (st == TSR_OK)
        st = tsr_indexed_writer_open(mask_prefix, TSR_INDEXED_UINT8, &w.mask);
    if (st == TSR_OK)
        st = read_all(job, &w);
    if (st == TSR_OK) {
        tsr_indexed_writer *t = w.tokens, *m = w.mask;
        w.tokens = w.mask = NULL;
        st = tsr_indexed_writer_finish(t);
        tsr_status sm = tsr_indexed_writer_finish(m);
        st = st == TSR_OK ? sm : st;
    }
    if (w.tokens != NULL)
        tsr_indexed_writer_abort(w.tokens);
    if (w.mask != NULL)
        tsr_indexed_writer_abort(w.mask);
    tsr_token_buffer_free(&w.ids);
    tsr_token_buffer_free(&w.bits);
    return st;
}
