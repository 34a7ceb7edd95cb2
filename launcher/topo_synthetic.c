/*
 * topo_synthetic.c - bounds on hwloc synthetic descriptions
 * (topo_synthetic.h).
 *
 * The walk follows hwloc 2.x's own parser (topology-synthetic.c): optional
 * root attributes "(...)", then levels "[type:]count[(attributes)]"
 * separated by any number of blanks, and attached memory "[numa...]"
 * without a count. Counts go through strtoul with base 0, as in hwloc, so
 * "0x10" is 16 here too. Wherever the text stops looking like a level the
 * walk stops and leaves the verdict to hwloc, which rejects it.
 */
#include "topo_synthetic.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Objects of all levels together: a tree with 2 children per object has
 * about twice as many objects as PUs; a chain of one-child levels more. */
#define MAX_OBJECTS (4 * TSR_TOPO_SYNTHETIC_MAX_PUS)

/* How much of the description a message repeats. */
enum { SHOWN = 120 };

typedef struct level_name {
    const char *text; /* NULL for a level given by its count alone */
    int len;
    int index; /* 1 for the first level */
} level_name;

/* `problem` is printf text completed by the count as written */
static tsr_status bad_count(const char *desc, level_name name, const char *problem,
                            const char *count, int count_len, uint64_t made)
{
    char level[64], what[160];
    if (name.text != NULL)
        snprintf(level, sizeof level, "'%.*s'", name.len < 40 ? name.len : 40, name.text);
    else
        snprintf(level, sizeof level, "%d", name.index);
    snprintf(what, sizeof what, problem, count_len < 40 ? count_len : 40, count,
             (unsigned long long)made);
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "--synthetic \"%.*s\": level %s %s; every count must be at least 1, "
                         "and a synthetic machine may have at most %d processing units (the "
                         "product of the counts) and %d objects in all, e.g. \"pack:2 numa:2 "
                         "core:8 pu:2\"",
                         SHOWN, desc, level, what, TSR_TOPO_SYNTHETIC_MAX_PUS, MAX_OBJECTS);
}

/* Skips "(...)" at *pos; false if it is not closed (hwloc rejects it). */
static int skip_attributes(const char **pos)
{
    if (**pos != '(')
        return 1;
    const char *close = strchr(*pos, ')');
    if (close == NULL)
        return 0;
    *pos = close + 1;
    return 1;
}

tsr_status tsr_topo_synthetic_check(const char *desc)
{
    const char *pos = desc;
    if (!skip_attributes(&pos))
        return TSR_OK;
    uint64_t width = 1, objects = 1;
    for (int index = 1; *pos != '\0'; index++) {
        while (*pos == ' ' || *pos == '\n')
            pos++;
        if (*pos == '\0')
            break;
        if (*pos == '[') { /* attached memory: one object per parent, no count */
            const char *close = strchr(pos, ']');
            if (close == NULL)
                return TSR_OK;
            pos = close + 1;
            continue;
        }
        level_name name = {NULL, 0, index};
        if (*pos < '0' || *pos > '9') {
            const char *colon = strchr(pos, ':');
            if (colon == NULL)
                return TSR_OK;
            name.text = pos;
            name.len = (int)(colon - pos);
            pos = colon + 1;
        }
        const char *digits = pos;
        while (isspace((unsigned char)*digits))
            digits++;
        char *end = NULL;
        errno = 0;
        unsigned long long count = strtoull(pos, &end, 0);
        if (end == pos)
            return TSR_OK;
        int count_len = (int)(end - digits);
        if (*digits == '-')
            return bad_count(desc, name, "has a negative count (%.*s)", digits, count_len, 0);
        if (count == 0)
            return bad_count(desc, name, "has a count of %.*s", digits, count_len, 0);
        if (errno == ERANGE || count > TSR_TOPO_SYNTHETIC_MAX_PUS)
            return bad_count(desc, name, "has a count of %.*s", digits, count_len, 0);
        if (width * count > TSR_TOPO_SYNTHETIC_MAX_PUS)
            return bad_count(desc, name, "(count %.*s) makes %llu objects of that level",
                             digits, count_len, width * count);
        if (objects + width * count > MAX_OBJECTS)
            return bad_count(desc, name, "(count %.*s) brings the machine to %llu objects",
                             digits, count_len, objects + width * count);
        width *= count;
        objects += width;
        pos = end;
        if (!skip_attributes(&pos))
            return TSR_OK;
    }
    return TSR_OK;
}
