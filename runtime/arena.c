/*
 * arena.c - memory plan and bump arenas (see arena.h).
 */
/* MAP_ANONYMOUS, MAP_NORESERVE */
#define _DEFAULT_SOURCE
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

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

void tsr_plan_add_sparse(tsr_memory_plan *plan, tsr_mem_category category, size_t bytes)
{
    plan->bytes[category] += bytes;
    plan->sparse[category] += bytes;
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
        size_t bytes = plan->bytes[c] - plan->sparse[c];
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

/* ------------------------------------------------------- sparse blocks */

size_t tsr_sparse_page_bytes(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096u;
}

size_t tsr_sparse_new_pages(size_t offset, size_t bytes, size_t *last_page)
{
    if (bytes == 0)
        return 0;
    size_t page = tsr_sparse_page_bytes();
    size_t first = offset / page, last = (offset + bytes - 1) / page;
    if (*last_page != SIZE_MAX && first <= *last_page)
        first = *last_page + 1;
    if (*last_page == SIZE_MAX || last > *last_page)
        *last_page = last;
    return first <= last ? (last - first + 1) * page : 0;
}

tsr_status tsr_sparse_reserve(size_t bytes, tsr_sparse_block *out)
{
    memset(out, 0, sizeof *out);
    out->last_page = SIZE_MAX;
    size_t page = tsr_sparse_page_bytes();
    size_t whole = (bytes + page - 1) / page * page;
    if (whole == 0)
        return TSR_OK;
    /* address space only: nothing is charged until a commit */
    void *base = mmap(NULL, whole, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                             "cannot reserve %.1f MiB of address space for a sparse buffer",
                             (double)whole / 1048576.0);
    out->base = base;
    out->bytes = whole;
    return TSR_OK;
}

tsr_status tsr_sparse_commit(tsr_sparse_block *block, size_t offset, size_t bytes)
{
    if (bytes == 0)
        return TSR_OK;
    size_t page = tsr_sparse_page_bytes();
    size_t first = offset / page * page, end = (offset + bytes + page - 1) / page * page;
    if (block->base == NULL || end > block->bytes)
        return tsr_error_set(TSR_ERR_INTERNAL,
                             "a sparse commit of bytes [%zu, %zu) lies outside its %zu-byte block "
                             "(a bug in tessera)",
                             offset, offset + bytes, block->bytes);
    if (mprotect(block->base + first, end - first, PROT_READ | PROT_WRITE) != 0)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY,
                             "cannot commit %.1f MiB of a sparse buffer",
                             (double)(end - first) / 1048576.0);
    /* resident now, as the arenas are; rewriting a byte keeps what a page
     * given earlier already holds */
    volatile char *p = block->base;
    for (size_t at = first; at < end; at += page)
        p[at] = p[at];
    block->committed += tsr_sparse_new_pages(offset, bytes, &block->last_page);
    return TSR_OK;
}

void tsr_sparse_release(tsr_sparse_block *block)
{
    if (block->base != NULL)
        munmap(block->base, block->bytes);
    memset(block, 0, sizeof *block);
    block->last_page = SIZE_MAX;
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
