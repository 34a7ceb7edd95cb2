/*
 * flags.c - the table-driven flag parser (see flags.h).
 *
 * Accepts "--name value" and "--name=value". Numbers are parsed strictly:
 * the whole string must be a number, in range, with no overflow.
 */
#include "flags.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INVALID(...) tsr_error_set(TSR_ERR_INVALID_ARG, __VA_ARGS__)

const tsr_flag *tsr_flags_find(const tsr_flag_table *table, const char *name)
{
    for (size_t i = 0; i < table->count; i++)
        if (strcmp(table->flags[i].name, name) == 0)
            return &table->flags[i];
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diagonal + cost;
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

const tsr_flag *tsr_flags_suggest(const tsr_flag_table *table, const char *name)
{
    const tsr_flag *best = NULL;
    size_t best_distance = SIZE_MAX;
    for (size_t i = 0; i < table->count; i++) {
        size_t d = edit_distance(name, table->flags[i].name);
        if (d < best_distance) {
            best_distance = d;
            best = &table->flags[i];
        }
    }
    size_t allowed = strlen(name) / 3;
    if (allowed < 2)
        allowed = 2;
    /* a prefix of a known flag ("--hidden") is a plausible typo too */
    for (size_t i = 0; best_distance > allowed && i < table->count; i++)
        if (strlen(name) > 4 && strncmp(table->flags[i].name, name, strlen(name)) == 0)
            return &table->flags[i];
    return best_distance <= allowed ? best : NULL;
}

static tsr_status parse_integer(const tsr_flag *flag, const char *text, long long *out)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    bool in_range = true;
    if (end == text || *end != '\0') {
        /* accept whole numbers written in float notation, e.g. 1e6 */
        double d = strtod(text, &end);
        if (end == text || *end != '\0' || !isfinite(d) || d != floor(d))
            return INVALID("%s expects a whole number, got '%s'", flag->name, text);
        in_range = fabs(d) <= 9e18;
        v = in_range ? (long long)d : 0;
    } else if (errno == ERANGE) {
        in_range = false;
    }
    if (!in_range || (double)v < flag->min || (double)v > flag->max)
        return INVALID("%s %s is out of range; expected a whole number from %.0f to %.0f",
                       flag->name, text, flag->min, flag->max);
    *out = v;
    return TSR_OK;
}

static tsr_status parse_double(const tsr_flag *flag, const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0')
        return INVALID("%s expects a number, got '%s'", flag->name, text);
    if (!isfinite(v) || errno == ERANGE)
        return INVALID("%s value '%s' is not a finite number", flag->name, text);
    if (v < flag->min || v > flag->max)
        return INVALID("%s %s is out of range; expected a number from %g to %g", flag->name,
                       text, flag->min, flag->max);
    *out = v;
    return TSR_OK;
}

static tsr_status parse_choice(const tsr_flag *flag, const char *text, int *out)
{
    char options[512] = "";
    for (int i = 0; flag->choices[i] != NULL; i++) {
        if (strcmp(flag->choices[i], text) == 0) {
            *out = i;
            return TSR_OK;
        }
        size_t used = strlen(options);
        snprintf(options + used, sizeof options - used, "%s%s", i ? ", " : "",
                 flag->choices[i]);
    }
    return INVALID("%s does not accept '%s'; choose one of: %s", flag->name, text, options);
}

static tsr_status store_value(const tsr_flag *flag, void *dst, const char *text)
{
    char *field = (char *)dst + flag->offset;
    long long integer = 0;
    tsr_status st = TSR_OK;
    switch (flag->kind) {
    case TSR_FLAG_INT:
        st = parse_integer(flag, text, &integer);
        if (st == TSR_OK)
            *(int *)(void *)field = (int)integer;
        return st;
    case TSR_FLAG_INT64:
        st = parse_integer(flag, text, &integer);
        if (st == TSR_OK)
            *(int64_t *)(void *)field = (int64_t)integer;
        return st;
    case TSR_FLAG_DOUBLE:
        return parse_double(flag, text, (double *)(void *)field);
    case TSR_FLAG_STRING:
    case TSR_FLAG_WORDS:
        if (text[0] == '\0')
            return INVALID("%s needs a non-empty value", flag->name);
        *(const char **)(void *)field = text;
        return TSR_OK;
    case TSR_FLAG_CHOICE:
        return parse_choice(flag, text, (int *)(void *)field);
    case TSR_FLAG_BOOL:
        break;
    }
    return tsr_error_set(TSR_ERR_INTERNAL, "flag %s has no value parser", flag->name);
}

static tsr_status unknown_flag(const tsr_flag_table *table, const char *name)
{
    const tsr_flag *close = tsr_flags_suggest(table, name);
    if (close != NULL)
        return INVALID("unknown flag %s for 'tessera %s'; did you mean %s?", name,
                       table->command, close->name);
    return INVALID("unknown flag %s for 'tessera %s'; run 'tessera %s --help' for the list",
                   name, table->command, table->command);
}

/* An argument that starts a flag: "--x", but not "--" alone, nor a
 * negative number written with two dashes by mistake ("--5" is a value). */
static bool is_flag(const char *arg)
{
    return strncmp(arg, "--", 2) == 0 && arg[2] != '\0' && !isdigit((unsigned char)arg[2]) &&
           arg[2] != '.';
}

/* Joined TSR_FLAG_WORDS values of the latest parse; a static buffer, so a
 * parsed config needs no freeing. */
static char words_buffer[65536];
static size_t words_used;

/* Joins argv[first..end) with single spaces into words_buffer. */
static tsr_status join_words(const tsr_flag *flag, char **argv, int first, int end,
                             const char **out)
{
    char *start = words_buffer + words_used;
    size_t left = sizeof words_buffer - words_used;
    size_t n = 0;
    for (int i = first; i < end; i++) {
        size_t len = strlen(argv[i]);
        if (n + len + 2 > left)
            return INVALID("%s: its %d values are longer than %zu bytes in all; list fewer",
                           flag->name, end - first, sizeof words_buffer);
        if (i > first)
            start[n++] = ' ';
        memcpy(start + n, argv[i], len);
        n += len;
    }
    start[n] = '\0';
    words_used += n + 1;
    *out = start;
    return TSR_OK;
}

tsr_status tsr_flags_parse(const tsr_flag_table *table, void *dst, int argc, char **argv,
                           int *rest)
{
    if (rest != NULL)
        *rest = argc;
    words_used = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            if (rest != NULL)
                *rest = i + 1;
            return TSR_OK;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return INVALID("unexpected argument '%s' for 'tessera %s'; flags start with --, "
                           "e.g. --num-layers 4",
                           arg, table->command);
        char name[128];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (name_len >= sizeof name)
            return INVALID("unknown flag '%.40s...' for 'tessera %s'", arg, table->command);
        memcpy(name, arg, name_len);
        name[name_len] = '\0';
        const tsr_flag *flag = tsr_flags_find(table, name);
        if (flag == NULL)
            return unknown_flag(table, name);
        if (flag->kind == TSR_FLAG_BOOL) {
            if (eq != NULL)
                return INVALID("%s is a switch and takes no value (got '%s')", name, eq + 1);
            *(bool *)(void *)((char *)dst + flag->offset) = true;
            continue;
        }
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc || is_flag(argv[i + 1]) || strcmp(argv[i + 1], "--") == 0)
                return INVALID("%s needs a value (%s), e.g. %s %s", name,
                               flag->metavar ? flag->metavar : "VALUE", name,
                               flag->metavar ? flag->metavar : "VALUE");
            if (flag->kind == TSR_FLAG_WORDS) {
                int end = i + 1;
                while (end < argc && !is_flag(argv[end]) && strcmp(argv[end], "--") != 0)
                    end++;
                value = argv[i + 1];
                if (end - i > 2) {
                    tsr_status st = join_words(flag, argv, i + 1, end, &value);
                    if (st != TSR_OK)
                        return st;
                }
                i = end - 1;
            } else {
                value = argv[++i];
            }
        }
        tsr_status st = store_value(flag, dst, value);
        if (st != TSR_OK)
            return st;
    }
    return TSR_OK;
}

static void format_default(const tsr_flag *flag, const void *defaults, char *buf, size_t n)
{
    const char *field = (const char *)defaults + flag->offset;
    buf[0] = '\0';
    switch (flag->kind) {
    case TSR_FLAG_INT:
        snprintf(buf, n, "%d", *(const int *)(const void *)field);
        break;
    case TSR_FLAG_INT64:
        snprintf(buf, n, "%lld", (long long)*(const int64_t *)(const void *)field);
        break;
    case TSR_FLAG_DOUBLE:
        snprintf(buf, n, "%g", *(const double *)(const void *)field);
        break;
    case TSR_FLAG_STRING:
    case TSR_FLAG_WORDS: {
        const char *s = *(const char *const *)(const void *)field;
        snprintf(buf, n, "%s", s ? s : "");
        break;
    }
    case TSR_FLAG_CHOICE:
        snprintf(buf, n, "%s", flag->choices[*(const int *)(const void *)field]);
        break;
    case TSR_FLAG_BOOL:
        break;
    }
}

void tsr_flags_print_help(const tsr_flag_table *table, const void *defaults, FILE *out)
{
    for (size_t i = 0; i < table->count; i++) {
        const tsr_flag *flag = &table->flags[i];
        char left[96], def[128];
        if (flag->kind == TSR_FLAG_BOOL)
            snprintf(left, sizeof left, "%s", flag->name);
        else
            snprintf(left, sizeof left, "%s %s", flag->name, flag->metavar ? flag->metavar : "X");
        format_default(flag, defaults, def, sizeof def);
        fprintf(out, "  %-44s %s", left, flag->help);
        if (flag->kind == TSR_FLAG_CHOICE) {
            fputs(" {", out);
            for (int c = 0; flag->choices[c] != NULL; c++)
                fprintf(out, "%s%s", c ? "," : "", flag->choices[c]);
            fputs("}", out);
        }
        if (def[0] != '\0')
            fprintf(out, " [default: %s]", def);
        fputc('\n', out);
    }
}
