/*
 * registry.c - the table of models --model can name. Written at start-up
 * only (built-ins, then plugins), read afterwards.
 */
#include "registry.h"

#include <stdio.h>
#include <string.h>

#include "gpt_spec.h"

static tsr_model_entry models[TSR_REGISTRY_MAX_MODELS];
static size_t model_count;

tsr_status tsr_model_register(const char *name, const char *description,
                              tsr_model_build_fn build)
{
    if (name == NULL || name[0] == '\0' || build == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "tsr_model_register needs a name and a build "
                                                  "function");
    if (strlen(name) >= sizeof models[0].name)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "model name '%s' is longer than %zu "
                                                  "characters",
                             name, sizeof models[0].name - 1);
    if (tsr_registry_find(name) != NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "a model named '%s' is already registered",
                             name);
    if (model_count == TSR_REGISTRY_MAX_MODELS)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "at most %d models can be registered",
                             TSR_REGISTRY_MAX_MODELS);
    tsr_model_entry *e = &models[model_count++];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->description, sizeof e->description, "%s", description ? description : "");
    e->build = build;
    return TSR_OK;
}

tsr_status tsr_registry_init(void)
{
    if (tsr_registry_find("gpt") != NULL)
        return TSR_OK;
    tsr_status st = tsr_model_register("gpt", "GPT/LLaMA-style decoder shaped by the flags",
                                       tsr_gpt_build_spec);
    if (st == TSR_OK)
        st = tsr_model_register("gpt2", "GPT-2 small (124M): 12 x 768, LayerNorm, GELU, "
                                        "learned positions, tied output",
                                tsr_gpt_build_spec);
    if (st == TSR_OK)
        st = tsr_model_register("llama", "LLaMA architecture at GPT-2-small scale: RMSNorm, "
                                         "rotary, SwiGLU, GQA, untied",
                                tsr_gpt_build_spec);
    return st;
}

const tsr_model_entry *tsr_registry_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < model_count; i++)
        if (strcmp(models[i].name, name) == 0)
            return &models[i];
    return NULL;
}

void tsr_registry_names(char *out, size_t size)
{
    size_t used = 0;
    if (size > 0)
        out[0] = '\0';
    for (size_t i = 0; i < model_count && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i > 0 ? ", " : "",
                                 models[i].name);
}

size_t tsr_registry_count(void)
{
    return model_count;
}

const tsr_model_entry *tsr_registry_entry(size_t i)
{
    return i < model_count ? &models[i] : NULL;
}
