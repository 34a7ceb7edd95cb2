/*
 * decl.c - the declaration slots a module fills in declare() (module.h),
 * and the spec arena models build their specs from (spec.h).
 *
 * Specs are made once at start-up; the arena is a list of heap blocks
 * freed together when the run ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/spec.h"

int tsr_decl_param(tsr_module_decl *decl, bool enabled, const char *suffix, int64_t rows,
                   int64_t cols, tsr_param_split split, tsr_param_init init, float init_value,
                   unsigned flags)
{
    int i = decl->param_count;
    if (i >= TSR_MODULE_MAX_PARAMS) {
        decl->param_count++; /* past the limit: the builder reports it */
        return -1;
    }
    tsr_param_decl *p = &decl->params[i];
    memset(p, 0, sizeof *p);
    p->enabled = enabled;
    /* a suffix too long for its slot is left empty: the builder refuses it */
    if (strlen(suffix) < sizeof p->suffix)
        snprintf(p->suffix, sizeof p->suffix, "%s", suffix);
    p->rows = rows;
    p->cols = cols;
    p->split = split;
    p->init = init;
    p->init_value = init_value;
    p->flags = flags;
    decl->param_count++;
    return i;
}

void tsr_decl_adapter(tsr_module_decl *decl, int slot, int base, tsr_adapter_role role,
                      float scale)
{
    /* a bad slot is left unmarked: the builder refuses an adapter without
     * a base (check_decl) */
    if (slot < 0 || slot >= decl->param_count || slot >= TSR_MODULE_MAX_PARAMS)
        return;
    tsr_param_decl *p = &decl->params[slot];
    p->flags |= TSR_PARAM_ADAPTER;
    p->adapts = base;
    p->adapter_role = role;
    p->adapter_scale = scale;
}

void tsr_decl_experts(tsr_module_decl *decl, int slot, int64_t experts)
{
    if (slot >= 0 && slot < decl->param_count && slot < TSR_MODULE_MAX_PARAMS)
        decl->params[slot].experts = experts;
}

void tsr_decl_expert_split(tsr_module_decl *decl, int slot, tsr_param_split split)
{
    if (slot >= 0 && slot < decl->param_count && slot < TSR_MODULE_MAX_PARAMS)
        decl->params[slot].expert_split = split;
}

int tsr_decl_buffer(tsr_module_decl *decl, bool enabled, const char *name, tsr_buffer_rows rows,
                    int64_t cols, tsr_buffer_life life)
{
    int i = decl->buffer_count;
    if (i >= TSR_MODULE_MAX_BUFFERS) {
        decl->buffer_count++; /* past the limit: the builder reports it */
        return -1;
    }
    tsr_buffer_decl *b = &decl->buffers[i];
    memset(b, 0, sizeof *b);
    b->enabled = enabled;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->rows = rows;
    b->cols = cols;
    b->life = life;
    decl->buffer_count++;
    return i;
}

void tsr_decl_activation(tsr_module_decl *decl, int slot)
{
    if (slot >= 0 && slot < decl->buffer_count && slot < TSR_MODULE_MAX_BUFFERS)
        decl->buffers[slot].activation = true; /* a scratch one: the builder says so */
}

typedef struct arena_block {
    struct arena_block *next;
    max_align_t data[];
} arena_block;

struct tsr_spec_arena {
    arena_block *blocks;
};

tsr_status tsr_spec_arena_create(tsr_spec_arena **out)
{
    *out = calloc(1, sizeof **out);
    return *out != NULL ? TSR_OK : tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for specs");
}

void tsr_spec_arena_destroy(tsr_spec_arena *arena)
{
    if (arena == NULL)
        return;
    for (arena_block *b = arena->blocks, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(arena);
}

static void *arena_alloc(tsr_spec_arena *arena, size_t bytes)
{
    arena_block *b = calloc(1, sizeof *b + bytes + 1);
    if (b == NULL) {
        tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for specs (%zu bytes)", bytes);
        return NULL;
    }
    b->next = arena->blocks;
    arena->blocks = b;
    return b->data;
}

const char *tsr_spec_strdup(tsr_spec_arena *arena, const char *text)
{
    size_t n = strlen(text);
    char *copy = arena_alloc(arena, n + 1);
    if (copy != NULL)
        memcpy(copy, text, n + 1);
    return copy;
}

tsr_spec *tsr_spec_new(tsr_spec_arena *arena, const tsr_module_kind *kind, const char *name,
                       const void *config, size_t config_size)
{
    tsr_spec *spec = arena_alloc(arena, sizeof *spec);
    if (spec == NULL)
        return NULL;
    spec->kind = kind;
    if (name != NULL && (spec->name = tsr_spec_strdup(arena, name)) == NULL)
        return NULL;
    if (config_size > 0) {
        void *copy = arena_alloc(arena, config_size);
        if (copy == NULL)
            return NULL;
        memcpy(copy, config, config_size);
        spec->config = copy;
    }
    return spec;
}

tsr_status tsr_spec_add_child(tsr_spec *parent, const tsr_spec *child)
{
    if (parent == NULL || child == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "tsr_spec_add_child: NULL spec");
    if (parent->child_count >= TSR_MODULE_MAX_CHILDREN)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "spec '%s' (%s) has more than %d children",
                             parent->name ? parent->name : "(unnamed)", parent->kind->name,
                             TSR_MODULE_MAX_CHILDREN);
    parent->children[parent->child_count++] = child;
    return TSR_OK;
}

const tsr_spec **tsr_spec_layer_array(tsr_spec_arena *arena, int64_t count)
{
    if (count <= 0)
        return NULL;
    return arena_alloc(arena, (size_t)count * sizeof(const tsr_spec *));
}
