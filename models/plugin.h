/*
 * plugin.h - loading a model plugin (--model-plugin PATH.so).
 *
 * A plugin is a shared object built against the installed headers
 * (include/tessera/) that exports TSR_PLUGIN_REGISTER_SYMBOL (spec.h); its
 * registration function calls tsr_model_register() for each model it
 * provides. The plugin resolves tessera's functions from the `tessera`
 * executable, which exports them. Called once at start-up, on every rank,
 * before any allocation or communication (launcher/model_select.c).
 */
#ifndef TSR_MODELS_PLUGIN_H
#define TSR_MODELS_PLUGIN_H

#include "tessera/status.h"

/* Opens the shared object at `path` and runs its registration function.
 * The object stays loaded until the process ends. Fails with
 * TSR_ERR_INVALID_ARG (the user's input) when the path does not exist, is
 * not a loadable shared object, lacks the registration function, or the
 * function fails or registers no model; the message names the path, the
 * problem and what to do. */
tsr_status tsr_plugin_load(const char *path);

#endif /* TSR_MODELS_PLUGIN_H */
