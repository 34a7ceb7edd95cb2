/*
 * call_site.h - where a call was made, for messages about calls that did
 * not complete (the watchdog's ring of recent communication calls,
 * collectives/comm_trace.h).
 *
 * Callers never write one: functions that record their caller's site are
 * macros that pass TSR_HERE to an _at function, e.g. tsr_comm_allreduce()
 * to tsr_comm_allreduce_at(). A layer that only forwards a call (the
 * module API's tsr_module_tp_sum, say) takes the site of its own caller
 * and passes it on, so that the site named is in the code that made the
 * call, not in the forwarding layer.
 */
#ifndef TSR_CALL_SITE_H
#define TSR_CALL_SITE_H

typedef struct tsr_call_site {
    const char *func;  /* the calling function */
    const char *where; /* "file.c:line" */
} tsr_call_site;

#define TSR_CALL_SITE_STR_(x) #x
#define TSR_CALL_SITE_STR(x) TSR_CALL_SITE_STR_(x)
#ifdef __FILE_NAME__
#define TSR_CALL_SITE_FILE __FILE_NAME__
#else
#define TSR_CALL_SITE_FILE __FILE__
#endif
#ifdef __cplusplus /* a compound literal is C only */
#define TSR_HERE (tsr_call_site{__func__, TSR_CALL_SITE_FILE ":" TSR_CALL_SITE_STR(__LINE__)})
#else
#define TSR_HERE ((tsr_call_site){__func__, TSR_CALL_SITE_FILE ":" TSR_CALL_SITE_STR(__LINE__)})
#endif

#endif /* TSR_CALL_SITE_H */
