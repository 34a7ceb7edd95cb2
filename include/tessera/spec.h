/*
 * spec.h - models as declarations: a spec is a module kind, its config and
 * its children; a model spec is an embedding, one layer spec per layer
 * index, a final norm and a head. Models are registered by name, built in
 * (models/) or from a plugin (--model-plugin PATH.so).
 *
 * A model's build function runs once at start-up, on every rank, before
 * any allocation or communication: it reads the run's flags and composes
 * specs from the built-in modules (modules.h) and its own kinds. Specs are
 * allocated from the tsr_spec_arena it is given and live until the run
 * ends. The builder (sharding/) then checks the spec against the layout
 * and instantiates this rank's part of it.
 *
 * A plugin is a shared object exporting
 *     tsr_status tsr_plugin_register(void);
 * which calls tsr_model_register() for each model it provides.
 */
#ifndef TESSERA_SPEC_H
#define TESSERA_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/config.h"
#include "tessera/module.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_spec {
    const tsr_module_kind *kind;
    const char *name;   /* name segment of its parameters ("self_attention"); NULL: none */
    const void *config; /* the kind's config, copied into the arena */
    int child_count;
    const struct tsr_spec *children[TSR_MODULE_MAX_CHILDREN];
} tsr_spec;

typedef struct tsr_model_spec {
    const tsr_spec *embedding;   /* tokens -> residual stream (local rows) */
    const char *layer_prefix;    /* "decoder.layers": layer i's names are prefix.i.* */
    int64_t num_layers;
    const tsr_spec **layers;     /* num_layers specs, stream -> stream; may differ per layer */
    const tsr_spec *final_norm;  /* stream -> stream, before the head */
    const tsr_spec *head;        /* stream -> loss (a kind with logits) */
    /* FLOPs of forward + backward of one sample, for the throughput log
     * (NULL: not reported) */
    double (*flops_per_sample)(const tsr_config *cfg, int64_t padded_vocab);
} tsr_model_spec;

typedef struct tsr_spec_arena tsr_spec_arena;

tsr_status tsr_spec_arena_create(tsr_spec_arena **out);
void tsr_spec_arena_destroy(tsr_spec_arena *arena);

/* A spec of `kind` named `name` (copied; NULL: no name segment) with a
 * copy of config_size bytes of config; NULL on exhaustion (with the error
 * set). */
tsr_spec *tsr_spec_new(tsr_spec_arena *arena, const tsr_module_kind *kind, const char *name,
                       const void *config, size_t config_size);
/* Appends child to parent's children. */
tsr_status tsr_spec_add_child(tsr_spec *parent, const tsr_spec *child);
/* An array of count layer-spec pointers from the arena. */
const tsr_spec **tsr_spec_layer_array(tsr_spec_arena *arena, int64_t count);
/* A string copied into the arena. */
const char *tsr_spec_strdup(tsr_spec_arena *arena, const char *text);

/* Fills *out from the run's flags. Errors are configuration errors (the
 * message says which flag); they end the run with exit code 2. */
typedef tsr_status (*tsr_model_build_fn)(const tsr_config *cfg, tsr_spec_arena *arena,
                                         tsr_model_spec *out);

/* Registers a model under `name` for --model. description: one line for
 * the list of models. Fails if the name is taken. */
tsr_status tsr_model_register(const char *name, const char *description,
                              tsr_model_build_fn build);

/* The entry point a plugin exports: define it as
 *     TSR_PLUGIN_EXPORT tsr_status tsr_plugin_register(void) { ... }
 * (default visibility, so it stays exported under -fvisibility=hidden). */
typedef tsr_status (*tsr_plugin_register_fn)(void);
#define TSR_PLUGIN_REGISTER_SYMBOL "tsr_plugin_register"
#define TSR_PLUGIN_EXPORT __attribute__((visibility("default")))
TSR_PLUGIN_EXPORT tsr_status tsr_plugin_register(void);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_SPEC_H */
