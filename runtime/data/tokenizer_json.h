/*
 * tokenizer_json.h - the little JSON the tokenizer and `tessera
 * preprocess` need: vocab.json (an object of string -> integer) and JSON
 * lines (one object per line, some of whose values are wanted strings).
 *
 * A cursor over a byte range; strings are decoded (all escapes, \u with
 * surrogate pairs) to UTF-8 into a caller-owned growable buffer, so they
 * may hold NUL bytes. Values the caller does not want are skipped with a
 * nesting limit, so hostile input can neither overflow the stack nor read
 * past the range. Errors are TSR_ERR_FORMAT naming `name` and the byte
 * offset. Called by tokenizer.c and cmd_preprocess.c.
 */
#ifndef TSR_RUNTIME_TOKENIZER_JSON_H
#define TSR_RUNTIME_TOKENIZER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/status.h"

typedef struct tsr_json {
    const char *start, *pos, *end;
    const char *name; /* for messages: a file name, "input.jsonl line 3" */
} tsr_json;

typedef struct tsr_json_text {
    char *data; /* NUL-terminated; len excludes the NUL */
    size_t len, cap;
} tsr_json_text;

void tsr_json_init(tsr_json *j, const char *text, size_t len, const char *name);

/* The next non-space byte, or -1 at the end (consumes the spaces). */
int tsr_json_peek(tsr_json *j);

/* Consumes `c` after optional spaces, or fails saying `what` was expected. */
tsr_status tsr_json_expect(tsr_json *j, char c, const char *what);

/* A string value into *out (replacing its contents). */
tsr_status tsr_json_string(tsr_json *j, tsr_json_text *out);

/* An integer value (no fraction or exponent) in [min, max]. */
tsr_status tsr_json_integer(tsr_json *j, int64_t min, int64_t max, int64_t *out);

/* Skips one value of any type. */
tsr_status tsr_json_skip(tsr_json *j);

/* Fails unless only spaces remain. */
tsr_status tsr_json_end(tsr_json *j);

void tsr_json_text_free(tsr_json_text *t);

#endif /* TSR_RUNTIME_TOKENIZER_JSON_H */
