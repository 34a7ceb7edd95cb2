/*
 * arena.h - the memory plan and the arenas carved from it.
 *
 * Before anything is allocated, every consumer adds its needs to a plan,
 * by category (parameters, gradients, optimizer state, activations,
 * scratch). The plan is printed, then each category is allocated once as
 * one 64-byte-aligned block and carved by bump allocation. Nothing is
 * allocated inside a training step, so the plan is the memory use.
 */
#ifndef TSR_RUNTIME_ARENA_H
#define TSR_RUNTIME_ARENA_H

#include <stddef.h>

#include "tessera/status.h"

typedef enum tsr_mem_category {
    TSR_MEM_PARAMS = 0,
    TSR_MEM_GRADS,
    TSR_MEM_OPTIMIZER,
    TSR_MEM_ACTIVATIONS,
    TSR_MEM_SCRATCH,
    TSR_MEM_CATEGORY_COUNT
} tsr_mem_category;

typedef struct tsr_arena {
    char *base;
    size_t capacity;
    size_t used;
} tsr_arena;

typedef struct tsr_memory_plan {
    size_t bytes[TSR_MEM_CATEGORY_COUNT];
    /* of bytes[c], what its consumers hold in sparse blocks (below), not
     * in the category's arena */
    size_t sparse[TSR_MEM_CATEGORY_COUNT];
    tsr_arena arenas[TSR_MEM_CATEGORY_COUNT];
} tsr_memory_plan;

#define TSR_ARENA_ALIGN 64

const char *tsr_mem_category_name(tsr_mem_category category);

/* Adds `floats` fp32 values (rounded up to the alignment) to a category. */
void tsr_plan_add_floats(tsr_memory_plan *plan, tsr_mem_category category, size_t floats);
void tsr_plan_add_bytes(tsr_memory_plan *plan, tsr_mem_category category, size_t bytes);
size_t tsr_plan_total_bytes(const tsr_memory_plan *plan);
/* Adds bytes its consumer holds in a sparse block of its own. */
void tsr_plan_add_sparse(tsr_memory_plan *plan, tsr_mem_category category, size_t bytes);

/* Allocates every category once (zero-filled, so the pages are resident and
 * peak RSS can be compared with the plan). */
tsr_status tsr_plan_allocate(tsr_memory_plan *plan);
void tsr_plan_release(tsr_memory_plan *plan);

/* Carves `floats` values from a category's arena. Fails with a message if
 * the plan under-counted (a bug: the plan and the carving disagree). */
tsr_status tsr_plan_take_floats(tsr_memory_plan *plan, tsr_mem_category category, size_t floats,
                                float **out);
tsr_status tsr_plan_take_bytes(tsr_memory_plan *plan, tsr_mem_category category, size_t bytes,
                               void **out);

/* A sparse block: an address range of which only the committed pages have
 * memory behind them. A buffer whose layout is fixed (offsets shared with
 * other buffers) but of which only known parts are ever used holds just
 * those parts; touching any other part faults at once, so a reader that
 * should not be there cannot go unnoticed. Page-granular: planning calls
 * tsr_sparse_new_pages with the same ranges the commits will use. */
typedef struct tsr_sparse_block {
    char *base;
    size_t bytes;     /* reserved (whole pages) */
    size_t committed; /* bytes with memory behind them */
    size_t last_page; /* of the commits so far (they come in ascending order) */
} tsr_sparse_block;

size_t tsr_sparse_page_bytes(void);
/* Pages touched by [offset, offset + bytes) that no earlier range in
 * ascending order touched: *last_page carries the highest page counted so
 * far between calls (start it at SIZE_MAX). */
size_t tsr_sparse_new_pages(size_t offset, size_t bytes, size_t *last_page);
tsr_status tsr_sparse_reserve(size_t bytes, tsr_sparse_block *out);
/* Gives memory, zero-filled and resident, to the pages [offset, offset +
 * bytes) touches (ranges in ascending order; a page already given keeps
 * its contents). */
tsr_status tsr_sparse_commit(tsr_sparse_block *block, size_t offset, size_t bytes);
void tsr_sparse_release(tsr_sparse_block *block);

/* Logs the plan, one line per category and a total (rank 0). */
void tsr_plan_log(const tsr_memory_plan *plan);

/* Peak resident set size of this process so far, in bytes. */
size_t tsr_peak_rss_bytes(void);

#endif /* TSR_RUNTIME_ARENA_H */
