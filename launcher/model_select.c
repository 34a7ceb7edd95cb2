/*
 * model_select.c - --model and --model-plugin against the registry.
 *
 * Order: built-in models first (so a plugin cannot take their names),
 * then the plugin, then the lookup. Never prints, never communicates:
 * every rank reaches the same verdict from the same argv.
 */
#include "model_select.h"

#include <stdio.h>

#include "plugin.h"

tsr_status tsr_model_select(const tsr_config *cfg, const tsr_model_entry **out)
{
    *out = NULL;
    tsr_status st = tsr_registry_init();
    if (st != TSR_OK)
        return st;
    if (cfg->model_plugin != NULL) {
        st = tsr_plugin_load(cfg->model_plugin);
        if (st != TSR_OK)
            return st;
    }
    const char *name = cfg->model_name != NULL ? cfg->model_name : "gpt";
    const tsr_model_entry *entry = tsr_registry_find(name);
    if (entry == NULL) {
        char names[TSR_REGISTRY_MAX_MODELS * 66];
        tsr_registry_names(names, sizeof names);
        if (cfg->model_plugin != NULL)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--model %s is not a registered model (registered: %s; "
                                 "--model-plugin %s added none of that name): choose one of "
                                 "them",
                                 name, names, cfg->model_plugin);
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--model %s is not a registered model (registered: %s): choose "
                             "one of them, or load the plugin that provides it with "
                             "--model-plugin PATH.so",
                             name, names);
    }
    *out = entry;
    return TSR_OK;
}
