/*
 * train_preflight.c - checks of `tessera train` before MPI starts
 * (train_preflight.h). Every rank runs them on the same flags and file
 * system, so every rank reaches the same verdict and rank 0 alone prints it.
 */
#include "train_preflight.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "data/file_check.h"
#include "data/gpt_samples.h"
#include "train_checkpoint.h"

/* mkdir -p: every missing directory of path, parents first. */
static tsr_status make_directories(const char *path, const char *flag)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s is longer than PATH_MAX (%d)", flag,
                             PATH_MAX);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        struct stat sb;
        if (stat(buf, &sb) != 0) {
            /* another rank may create it at the same moment */
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return tsr_error_set(TSR_ERR_INVALID_ARG, "%s %s: cannot create %s: %s", flag,
                                     path, buf, strerror(errno));
        } else if (!S_ISDIR(sb.st_mode)) {
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "%s %s: %s is a file, not a directory; give a directory path",
                                 flag, path, buf);
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    if (access(path, W_OK | X_OK) != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s %s: this process cannot write there (%s)",
                             flag, path, strerror(errno));
    return TSR_OK;
}

tsr_status tsr_train_preflight(const tsr_config *cfg)
{
    double fractions[3];
    tsr_status st = tsr_split_parse(cfg->split, fractions);
    if (st != TSR_OK)
        return st;
    if (cfg->save != NULL && (st = make_directories(cfg->save, "--save")) != TSR_OK)
        return st;
    if (cfg->metrics_file != NULL) {
        char parent[PATH_MAX];
        tsr_file_directory_of(cfg->metrics_file, parent, sizeof parent);
        if ((st = make_directories(parent, "--metrics-file")) != TSR_OK ||
            (st = tsr_file_check_output(cfg->metrics_file, "--metrics-file")) != TSR_OK)
            return st;
    }
    if (cfg->watchdog_dir != NULL &&
        (st = make_directories(cfg->watchdog_dir, "--watchdog-dir")) != TSR_OK)
        return st;
    tsr_train_load_source load = tsr_train_load_source_of(cfg);
    if (load.dir != NULL) {
        int64_t iteration = 0;
        st = tsr_checkpoint_resolve(load.flag, load.dir, cfg->ckpt_step, &iteration);
    }
    return st;
}

tsr_status tsr_train_check_memory(size_t plan_bytes, int ranks_on_node)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0)
        return TSR_OK; /* unknown: the allocation will tell */
    double have = (double)pages * (double)page;
    int ranks = ranks_on_node > 0 ? ranks_on_node : 1;
    double need = (double)plan_bytes * ranks;
    if (need <= have)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "the memory plan needs %.1f GiB per rank x %d rank(s) on this node = "
                         "%.1f GiB, but the node has %.1f GiB; use a smaller model or batch, "
                         "more tensor/pipeline parallelism, --recompute-granularity full, or "
                         "more nodes",
                         (double)plan_bytes / 1073741824.0, ranks, need / 1073741824.0,
                         have / 1073741824.0);
}
