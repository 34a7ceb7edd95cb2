/*
 * status.c - status names and the per-thread last-error message.
 *
 * The message buffer is thread-local so that OpenMP workers or a watchdog
 * thread reporting a failure never overwrite the main thread's message.
 */
#include "tessera/status.h"

#include <stdio.h>

#define TSR_ERROR_MESSAGE_MAX 2048

static _Thread_local char last_error[TSR_ERROR_MESSAGE_MAX];

static const char *const status_names[TSR_STATUS_COUNT] = {
    [TSR_OK] = "success",
    [TSR_ERR_INVALID_ARG] = "invalid argument",
    [TSR_ERR_OUT_OF_MEMORY] = "out of memory",
    [TSR_ERR_IO] = "I/O error",
    [TSR_ERR_FORMAT] = "malformed file",
    [TSR_ERR_COMM] = "communication error",
    [TSR_ERR_TIMEOUT] = "timeout",
    [TSR_ERR_NUMERIC] = "numerical error",
    [TSR_ERR_UNSUPPORTED] = "unsupported",
    [TSR_ERR_INTERNAL] = "internal error",
};

const char *tsr_status_string(tsr_status status)
{
    if ((int)status < 0 || status >= TSR_STATUS_COUNT)
        return "unknown status";
    return status_names[status];
}

const char *tsr_last_error(void)
{
    return last_error;
}

tsr_status tsr_error_setv(tsr_status status, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return status;
}

tsr_status tsr_error_set(tsr_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tsr_error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

void tsr_error_clear(void)
{
    last_error[0] = '\0';
}

int tsr_status_exit_code(tsr_status status)
{
    if (status == TSR_OK)
        return 0;
    return status == TSR_ERR_INVALID_ARG || status == TSR_ERR_FORMAT ? 2 : 1;
}
