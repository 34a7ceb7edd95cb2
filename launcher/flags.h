/*
 * flags.h - a table-driven command-line parser.
 *
 * A flag table maps Megatron-LM spellings ("--hidden-size") to a field of a
 * destination struct, with its type, range and help text. The same parser
 * serves every subcommand; each subcommand owns its table. Parsing never
 * prints: errors come back as TSR_ERR_INVALID_ARG with the message in
 * tsr_last_error(), so the caller decides which rank prints it.
 */
#ifndef TSR_LAUNCHER_FLAGS_H
#define TSR_LAUNCHER_FLAGS_H

#include <stddef.h>
#include <stdio.h>

#include "tessera/status.h"

typedef enum tsr_flag_kind {
    TSR_FLAG_INT,    /* int */
    TSR_FLAG_INT64,  /* int64_t */
    TSR_FLAG_DOUBLE, /* double */
    TSR_FLAG_BOOL,   /* bool, set to true by its presence */
    TSR_FLAG_STRING, /* const char *, borrowed from argv */
    TSR_FLAG_CHOICE, /* int: index of the value in `choices` */
    TSR_FLAG_WORDS   /* const char *: every argument up to the next flag, joined by
                      * spaces (Megatron's nargs='*', e.g. --data-path 0.3 A 0.7 B);
                      * kept by the parser until its next call */
} tsr_flag_kind;

typedef struct tsr_flag {
    const char *name; /* with the leading "--" */
    tsr_flag_kind kind;
    size_t offset;           /* of the field in the destination struct */
    double min, max;         /* inclusive range for numbers */
    const char *const *choices; /* NULL-terminated, for TSR_FLAG_CHOICE */
    const char *metavar;     /* shown in help: "N", "LR", "DIR" */
    const char *help;
} tsr_flag;

typedef struct tsr_flag_table {
    const char *command; /* "train", "topo", ... for messages */
    const tsr_flag *flags;
    size_t count;
} tsr_flag_table;

/* Parses argv[0..argc) into dst. Stops at "--" (the index of the first
 * argument after it is stored in *rest if rest is not NULL; argc if none).
 * Every argument must be a known flag. */
tsr_status tsr_flags_parse(const tsr_flag_table *table, void *dst, int argc, char **argv,
                           int *rest);

/* Finds a flag by exact name; NULL if unknown. */
const tsr_flag *tsr_flags_find(const tsr_flag_table *table, const char *name);

/* The known flag closest to `name` by edit distance, or NULL if none is
 * close enough to be a plausible typo. */
const tsr_flag *tsr_flags_suggest(const tsr_flag_table *table, const char *name);

/* Prints the table as help text, one flag per line with its default taken
 * from `defaults` (a struct of the destination type). */
void tsr_flags_print_help(const tsr_flag_table *table, const void *defaults, FILE *out);

#endif /* TSR_LAUNCHER_FLAGS_H */
