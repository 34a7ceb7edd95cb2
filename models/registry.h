/*
 * registry.h - the models `--model NAME` can pick: the built-in presets
 * (models/gpt_spec.c) and whatever plugins registered (models/plugin.c).
 *
 * Registration happens at start-up, before flags are validated against
 * the chosen model; the registry is process-wide state written only then
 * (one table, filled by tsr_registry_init and plugins, read afterwards).
 */
#ifndef TSR_MODELS_REGISTRY_H
#define TSR_MODELS_REGISTRY_H

#include <stddef.h>

#include "tessera/spec.h"

#define TSR_REGISTRY_MAX_MODELS 64

typedef struct tsr_model_entry {
    char name[64];
    char description[160];
    tsr_model_build_fn build;
} tsr_model_entry;

/* Registers the built-in models (idempotent). */
tsr_status tsr_registry_init(void);

/* The entry named `name`, or NULL. */
const tsr_model_entry *tsr_registry_find(const char *name);

/* "gpt2, llama, ..." : every registered name, for error messages. */
void tsr_registry_names(char *out, size_t size);

/* Number of entries and entry i (for listing). */
size_t tsr_registry_count(void);
const tsr_model_entry *tsr_registry_entry(size_t i);

#endif /* TSR_MODELS_REGISTRY_H */
