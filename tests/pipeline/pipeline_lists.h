/*
 * pipeline_lists.h - every rank's action list of one schedule, built
 * together, for the pipeline tests. Test-only helper: allocates freely.
 */
#ifndef TSR_TEST_PIPELINE_LISTS_H
#define TSR_TEST_PIPELINE_LISTS_H

#include <stdlib.h>

#include "sharding/pipeline_schedule.h"

typedef struct pp_lists {
    int p, m, v;
    tsr_pp_action *lists[64];
    size_t counts[64];
} pp_lists;

/* Builds all ranks' lists; returns the first failing status. */
static inline tsr_status pp_lists_build(tsr_pp_schedule_kind kind, int p, int m, int v,
                                        pp_lists *out)
{
    *out = (pp_lists){.p = p, .m = m, .v = v};
    if (p < 1 || p > 64)
        return TSR_ERR_INVALID_ARG;
    for (int r = 0; r < p; r++) {
        tsr_pp_schedule_spec s = {kind, p, r, m, v};
        size_t n = 0;
        tsr_status st = tsr_pp_schedule_count(&s, &n);
        if (st != TSR_OK)
            return st;
        out->lists[r] = calloc(n + 1, sizeof(tsr_pp_action));
        if (out->lists[r] == NULL)
            return TSR_ERR_OUT_OF_MEMORY;
        st = tsr_pp_schedule_build(&s, out->lists[r], n, &out->counts[r]);
        if (st != TSR_OK)
            return st;
    }
    return TSR_OK;
}

static inline void pp_lists_free(pp_lists *l)
{
    for (int r = 0; r < 64; r++) {
        free(l->lists[r]);
        l->lists[r] = NULL;
    }
}

static inline const tsr_pp_action *const *pp_lists_view(const pp_lists *l)
{
    return (const tsr_pp_action *const *)l->lists;
}

#endif /* TSR_TEST_PIPELINE_LISTS_H */
