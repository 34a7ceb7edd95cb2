/*
 * tokenizer_json.c - a strict, bounded JSON reader (see tokenizer_json.h).
 *
 * Invariant: pos never passes end; every read checks the bytes left first.
 */
#include "tokenizer_json.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 128 };

void tsr_json_init(tsr_json *j, const char *text, size_t len, const char *name)
{
    j->start = j->pos = text;
    j->end = text + len;
    j->name = name;
}

static tsr_status fail(const tsr_json *j, const char *what)
{
    return tsr_error_set(TSR_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", j->name,
                         (size_t)(j->pos - j->start), what);
}

int tsr_json_peek(tsr_json *j)
{
    while (j->pos < j->end &&
           (*j->pos == ' ' || *j->pos == '\t' || *j->pos == '\n' || *j->pos == '\r'))
        j->pos++;
    return j->pos < j->end ? (unsigned char)*j->pos : -1;
}

tsr_status tsr_json_expect(tsr_json *j, char c, const char *what)
{
    if (tsr_json_peek(j) != (unsigned char)c)
        return fail(j, what);
    j->pos++;
    return TSR_OK;
}

static int append(tsr_json_text *t, const char *bytes, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap > 0 ? t->cap : 64;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->data, cap);
        if (p == NULL)
            return 0;
        t->data = p;
        t->cap = cap;
    }
    memcpy(t->data + t->len, bytes, n);
    t->len += n;
    t->data[t->len] = '\0';
    return 1;
}

static int append_code_point(tsr_json_text *t, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return append(t, b, n);
}

static int hex4(const tsr_json *j, uint32_t *out)
{
    if (j->end - j->pos < 4)
        return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->pos[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* After a backslash: one escape, appended to out. */
static tsr_status escape(tsr_json *j, tsr_json_text *out)
{
    if (j->pos >= j->end)
        return fail(j, "unterminated escape");
    char c = *j->pos++;
    static const char escapes[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
    const char *simple = c != '\0' ? strchr(escapes, c) : NULL;
    if (simple != NULL) {
        return append(out, &decoded[simple - escapes], 1)
                   ? TSR_OK
                   : tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "JSON string too large");
    }
    if (c != 'u')
        return fail(j, "unknown escape in a string");
    uint32_t cp = 0;
    if (!hex4(j, &cp))
        return fail(j, "\\u needs four hex digits");
    j->pos += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate wants its low half */
        uint32_t low = 0;
        if (j->end - j->pos >= 6 && j->pos[0] == '\\' && j->pos[1] == 'u') {
            j->pos += 2;
            if (!hex4(j, &low) || low < 0xDC00 || low > 0xDFFF)
                return fail(j, "a high surrogate \\u escape is not followed by a low one");
            j->pos += 4;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else {
            return fail(j, "a high surrogate \\u escape is not followed by a low one");
        }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail(j, "a lone low surrogate \\u escape");
    }
    return append_code_point(out, cp) ? TSR_OK
                                      : tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                                                      "JSON string too large");
}

tsr_status tsr_json_string(tsr_json *j, tsr_json_text *out)
{
    out->len = 0;
    if (!append(out, "", 0))
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "JSON string too large");
    tsr_status st = tsr_json_expect(j, '"', "expected a string");
    while (st == TSR_OK) {
        const char *run = j->pos;
        while (j->pos < j->end && *j->pos != '"' && *j->pos != '\\' &&
               (unsigned char)*j->pos >= 0x20)
            j->pos++;
        if (!append(out, run, (size_t)(j->pos - run)))
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "JSON string too large");
        if (j->pos >= j->end)
            return fail(j, "unterminated string");
        char c = *j->pos++;
        if (c == '"')
            return TSR_OK;
        if (c != '\\') {
            j->pos--;
            return fail(j, "control character inside a string");
        }
        st = escape(j, out);
    }
    return st;
}

tsr_status tsr_json_integer(tsr_json *j, int64_t min, int64_t max, int64_t *out)
{
    int c = tsr_json_peek(j);
    int negative = c == '-';
    if (negative)
        j->pos++;
    if (j->pos >= j->end || *j->pos < '0' || *j->pos > '9')
        return fail(j, "expected an integer");
    int64_t v = 0;
    while (j->pos < j->end && *j->pos >= '0' && *j->pos <= '9') {
        int digit = *j->pos++ - '0';
        if (v > (INT64_MAX - digit) / 10)
            return fail(j, "integer too large");
        v = v * 10 + digit;
    }
    if (j->pos < j->end && (*j->pos == '.' || *j->pos == 'e' || *j->pos == 'E'))
        return fail(j, "expected a whole number");
    if (negative)
        v = -v;
    if (v < min || v > max)
        return fail(j, "integer out of range");
    *out = v;
    return TSR_OK;
}

static tsr_status skip_number(tsr_json *j)
{
    const char *s = j->pos;
    if (j->pos < j->end && *j->pos == '-')
        j->pos++;
    int digits = 0;
    while (j->pos < j->end && ((*j->pos >= '0' && *j->pos <= '9') || *j->pos == '.' ||
                               *j->pos == 'e' || *j->pos == 'E' || *j->pos == '+' ||
                               *j->pos == '-')) {
        digits += *j->pos >= '0' && *j->pos <= '9';
        j->pos++;
    }
    if (digits == 0) {
        j->pos = s;
        return fail(j, "expected a value");
    }
    return TSR_OK;
}

static tsr_status skip_literal(tsr_json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->pos) < n || memcmp(j->pos, word, n) != 0)
        return fail(j, "expected a value");
    j->pos += n;
    return TSR_OK;
}

static tsr_status skip_value(tsr_json *j, int depth, tsr_json_text *scratch)
{
    if (depth > MAX_DEPTH)
        return fail(j, "values nested too deeply");
    int c = tsr_json_peek(j);
    tsr_status st = TSR_OK;
    switch (c) {
    case '"':
        return tsr_json_string(j, scratch);
    case '{':
    case '[': {
        char close = c == '{' ? '}' : ']';
        j->pos++;
        if (tsr_json_peek(j) == close) {
            j->pos++;
            return TSR_OK;
        }
        for (;;) {
            if (c == '{') {
                st = tsr_json_string(j, scratch);
                if (st == TSR_OK)
                    st = tsr_json_expect(j, ':', "expected ':' after a key");
            }
            if (st == TSR_OK)
                st = skip_value(j, depth + 1, scratch);
            if (st != TSR_OK)
                return st;
            int next = tsr_json_peek(j);
            j->pos += next >= 0;
            if (next == close)
                return TSR_OK;
            if (next != ',') {
                j->pos -= next >= 0;
                return fail(j, "expected ',' or the end of the object/array");
            }
        }
    }
    case 't':
        return skip_literal(j, "true");
    case 'f':
        return skip_literal(j, "false");
    case 'n':
        return skip_literal(j, "null");
    default:
        return skip_number(j);
    }
}

tsr_status tsr_json_skip(tsr_json *j)
{
    tsr_json_text scratch = {0};
    tsr_status st = skip_value(j, 0, &scratch);
    tsr_json_text_free(&scratch);
    return st;
}

tsr_status tsr_json_end(tsr_json *j)
{
    return tsr_json_peek(j) < 0 ? TSR_OK : fail(j, "unexpected text after the value");
}

void tsr_json_text_free(tsr_json_text *t)
{
    free(t->data);
    t->data = NULL;
    t->len = t->cap = 0;
}
