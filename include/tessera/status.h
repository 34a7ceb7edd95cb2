/*
 * status.h - the status type every tessera function returns, and the
 * per-thread "last error" message that explains it.
 *
 * Convention (NCCL-style): a function that can fail returns tsr_status; on
 * failure it records a human-readable message with tsr_error_set(), which
 * the caller can read back with tsr_last_error() until the next failure on
 * the same thread. Messages say what was wrong and what to do about it.
 * Library code never calls exit() or assert() to validate input.
 */
#ifndef TESSERA_STATUS_H
#define TESSERA_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tsr_status {
    TSR_OK = 0,
    TSR_ERR_INVALID_ARG,   /* bad user input or configuration */
    TSR_ERR_OUT_OF_MEMORY, /* an allocation failed */
    TSR_ERR_IO,            /* a file could not be read or written */
    TSR_ERR_FORMAT,        /* a file was read but its contents are wrong */
    TSR_ERR_COMM,          /* a communication call failed */
    TSR_ERR_TIMEOUT,       /* a peer did not answer in time */
    TSR_ERR_NUMERIC,       /* NaN/Inf where a finite number was required */
    TSR_ERR_UNSUPPORTED,   /* valid request this build cannot serve */
    TSR_ERR_INTERNAL,      /* a bug in tessera */
    TSR_STATUS_COUNT
} tsr_status;

/* Short fixed name of a status ("invalid argument", ...). Never NULL. */
const char *tsr_status_string(tsr_status status);

/* The detailed message recorded by the last failing call on this thread,
 * or "" if none. The pointer stays valid until the next tsr_error_set(). */
const char *tsr_last_error(void);

/* Records a formatted message as this thread's last error and returns
 * `status`, so that a failure site reads `return tsr_error_set(...)`. */
tsr_status tsr_error_set(tsr_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
tsr_status tsr_error_setv(tsr_status status, const char *fmt, va_list ap);

/* Clears this thread's last error. */
void tsr_error_clear(void);

/* Exit code the CLI uses for a status: 2 for bad input, 1 otherwise. */
int tsr_status_exit_code(tsr_status status);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_STATUS_H */
