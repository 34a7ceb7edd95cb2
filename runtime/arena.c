/*
 * arena.c - memory plan and bump arenas (see arena.h).
 */
#include "arena.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tessera/log.h"

static const char *const category_names[TSR_MEM_CATEGORY_COUNT] = {
    "parameters", "gradients", "optimizer state", "activations", "scratch"};

const char *tsr_mem_category_name(tsr_mem_category category)
{
    return category < TSR_MEM_CATEGORY_COUNT ? category_names[category] : "unknown";
}

static size_t round_up(size_t bytes)
{
    return (bytes + TSR_ARENA_ALIGN - 1) / TSR_ARENA_ALIGN * TSR_ARENA_ALIGN;
}

void tsr_plan_add_bytes(tsr_memory_plan *plan, tsr_mem_category category, size_t bytes)
{
    plan->bytes[category] += round_up(bytes);
}

void tsr_plan_add_floats(tsr_memory_plan *plan, tsr_mem_category category, size_t floats)
{
    tsr_plan_add_bytes(plan, category, floats * sizeof(float));
}

size_t tsr_plan_total_bytes(const tsr_memory_plan *plan)
{
    size_t total = 0;
    for (int c = 0; c < TSR_MEM_CATEGORY_COUNT; c++)
        total += plan->bytes[c];
    return total;
}

tsr_status tsr_plan_allocate(tsr_memory_plan *plan)
{
    for (int c = 0; c < TSR_MEM_CATEGORY_COUNT; c++) {
        size_t bytes = plan->bytes[c];
        tsr_arena *arena = &plan->arenas[c];
        arena->used = 0;
        arena->capacity = bytes;
        arena->base = NULL;
        if (bytes == 0)
            continue;
        arena->base = aligned_alloc(TSR_ARENA_ALIGN, bytes);
        if (arena->base == NULL) {
            tsr_plan_release(plan);
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                                 "cannot allocate %.1f MiB for %s (plan total %.1f MiB); "
                                 "use a smaller model, micro batch or sequence, or more ranks",
                                 (double)bytes / 1048576.0, category_names[c],
                                 (double)tsr_plan_total_bytes(plan) / 1048576.0);
        }
        memset(arena->base, 0, bytes);
    }
    return TSR_OK;
}

void tsr_plan_release(tsr_memory_plan *plan)
{
    for (int c = 0; c < TSR_MEM_CATEGORY_COUNT; c++) {
        free(plan->arenas[c].base);
        plan->arenas[c].base = NULL;
        plan->arenas[c].capacity = plan->arenas[c].used = 0;
    }
}

tsr_status tsr_plan_take_bytes(tsr_memory_plan *plan, tsr_mem_category category, size_t bytes,
                               void **out)
{
    tsr_arena *arena = &plan->arenas[category];
    size_t need = round_up(bytes);
    if (arena->used + need > arena->capacity)
        return tsr_error_set(TSR_ERR_INTERNAL,
                             "memory plan for %s is %zu bytes but %zu were requested; the plan "
                             "and the allocation disagree (a bug in tessera)",
                             category_names[category], arena->capacity, arena->used + need);
    *out = arena->base + arena->used;
    arena->used += need;
    return TSR_OK;
}

tsr_status tsr_plan_take_floats(tsr_memory_plan *plan, tsr_mem_category category, size_t floats,
                                float **out)
{
    void *p = NULL;
    tsr_status st = tsr_plan_take_bytes(plan, category, floats * sizeof(float), &p);
    *out = p;
    return st;
}

void tsr_plan_log(const tsr_memory_plan *plan)
{
    for (int c = 0; c < TSR_MEM_CATEGORY_COUNT; c++)
        tsr_log_once(TSR_LOG_INFO, "memory plan: %-16s %10.2f MiB", category_names[c],
                     (double)plan->bytes[c] / 1048576.0);
    tsr_log_once(TSR_LOG_INFO, "memory plan: %-16s %10.2f MiB", "total",
                 (double)tsr_plan_total_bytes(plan) / 1048576.0);
}

size_t tsr_peak_rss_bytes(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (size_t)usage.ru_maxrss * 1024u; /* Linux reports KiB */
}
