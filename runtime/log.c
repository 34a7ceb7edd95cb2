/*
 * log.c - rank-prefixed logging.
 *
 * Each line is formatted into one buffer and written with a single call so
 * that lines from different ranks sharing a terminal do not interleave
 * mid-line. INFO and DEBUG go to stdout, WARN and ERROR to stderr.
 */
#include "tessera/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct {
    int rank;
    int world_size;
    tsr_log_level level;
} logger = {0, 1, TSR_LOG_INFO};

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void tsr_log_configure(int rank, int world_size, tsr_log_level level)
{
    logger.rank = rank;
    logger.world_size = world_size;
    logger.level = level;
}

tsr_log_level tsr_log_threshold(void)
{
    return logger.level;
}

int tsr_log_rank(void)
{
    return logger.rank;
}

int tsr_log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

static void log_line(tsr_log_level level, const char *fmt, va_list ap)
{
    if (level < logger.level || level >= TSR_LOG_OFF)
        return;
    char line[4096];
    int n = snprintf(line, sizeof line, "[tessera r%d/%d %s] ", logger.rank,
                     logger.world_size, level_names[level]);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = m < 0 ? (size_t)n : strnlen(line, sizeof line - 2);
    line[len++] = '\n';
    line[len] = '\0';
    FILE *out = level >= TSR_LOG_WARN ? stderr : stdout;
    fputs(line, out);
    fflush(out);
}

void tsr_log(tsr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, fmt, ap);
    va_end(ap);
}

void tsr_log_once(tsr_log_level level, const char *fmt, ...)
{
    if (logger.rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, fmt, ap);
    va_end(ap);
}
