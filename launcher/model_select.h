/*
 * model_select.h - which model `tessera train` builds: the registry's
 * built-in models, the plugin given by --model-plugin, and --model.
 *
 * Called by cmd_train on every rank after the flags are validated and
 * before any allocation or communication, so that an unknown model or a
 * broken plugin is a configuration error (exit code 2, printed once).
 */
#ifndef TSR_LAUNCHER_MODEL_SELECT_H
#define TSR_LAUNCHER_MODEL_SELECT_H

#include "registry.h"
#include "tessera/config.h"

/* Registers the built-in models, loads cfg->model_plugin if set, and
 * returns the entry named cfg->model_name in *out. An unknown name is
 * TSR_ERR_INVALID_ARG with a message listing the registered names. */
tsr_status tsr_model_select(const tsr_config *cfg, const tsr_model_entry **out);

#endif /* TSR_LAUNCHER_MODEL_SELECT_H */
