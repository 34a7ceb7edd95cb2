/*
 * plugin.c - loads a model plugin: dlopen, find tsr_plugin_register, call
 * it, check that it registered something.
 *
 * Every failure is the user's input (exit code 2) and its message names
 * the plugin path, the problem and the fix. The handle is never closed
 * once the registration function ran: the registry keeps pointers to the
 * plugin's build functions and module kinds for the rest of the run.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "registry.h"
#include "tessera/spec.h"

#define INVALID(...) tsr_error_set(TSR_ERR_INVALID_ARG, __VA_ARGS__)
#define HOW_TO_BUILD                                                                        \
    "build the plugin with add_library(NAME MODULE ...) against the installed tessera "    \
    "package (find_package(tessera), target tessera::plugin); see "                        \
    "examples/custom_model/README.md"

static tsr_status check_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return INVALID("--model-plugin %s does not exist: give the path of the plugin's "
                           ".so file (a relative path is taken from the working directory)",
                           path);
        return INVALID("--model-plugin %s cannot be opened: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return INVALID("--model-plugin %s is not a file: give the path of the plugin's .so "
                       "file",
                       path);
    return TSR_OK;
}

tsr_status tsr_plugin_load(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return INVALID("--model-plugin needs the path of a shared object");
    tsr_status st = check_path(path);
    if (st != TSR_OK)
        return st;
    /* a name without a slash would be searched for on the library path,
     * not in the working directory where stat() just found it */
    char local[4096];
    const char *open_path = path;
    if (strchr(path, '/') == NULL) {
        if ((size_t)snprintf(local, sizeof local, "./%s", path) >= sizeof local)
            return INVALID("--model-plugin %s: the path is too long", path);
        open_path = local;
    }
    dlerror();
    void *handle = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        if (why == NULL)
            why = "dlopen failed";
        if (strstr(why, "undefined symbol") != NULL)
            return INVALID("--model-plugin %s cannot be loaded: %s; the plugin calls a "
                           "function this tessera does not have: rebuild it against the "
                           "headers of the tessera that runs it",
                           path, why);
        return INVALID("--model-plugin %s is not a shared object tessera can load: %s; %s",
                       path, why, HOW_TO_BUILD);
    }
    dlerror();
    void *symbol = dlsym(handle, TSR_PLUGIN_REGISTER_SYMBOL);
    if (symbol == NULL) {
        dlclose(handle);
        return INVALID("--model-plugin %s lacks the registration function %s(): a plugin "
                       "defines `tsr_status %s(void)` (exported, not static) that calls "
                       "tsr_model_register() for each model it provides",
                       path, TSR_PLUGIN_REGISTER_SYMBOL, TSR_PLUGIN_REGISTER_SYMBOL);
    }
    tsr_plugin_register_fn register_fn;
    memcpy(&register_fn, &symbol, sizeof register_fn); /* POSIX: dlsym returns code addresses */

    size_t before = tsr_registry_count();
    tsr_error_clear();
    st = register_fn();
    if (st != TSR_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", tsr_last_error()[0] != '\0' ? tsr_last_error()
                                                                    : "(it set no message)");
        return INVALID("--model-plugin %s: its %s() failed (%s): %s", path,
                       TSR_PLUGIN_REGISTER_SYMBOL, tsr_status_string(st), why);
    }
    if (tsr_registry_count() == before)
        return INVALID("--model-plugin %s registered no model: its %s() must call "
                       "tsr_model_register(name, description, build) for each model it "
                       "provides",
                       path, TSR_PLUGIN_REGISTER_SYMBOL);
    return TSR_OK;
}
