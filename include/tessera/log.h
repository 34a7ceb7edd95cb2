/*
 * log.h - rank-prefixed, levelled logging to stderr/stdout.
 *
 * Every line carries "[tessera rR/W LEVEL]" so that interleaved output of
 * many ranks stays readable. tsr_log_once() prints only on rank 0: use it
 * for messages every rank would otherwise repeat (configuration errors,
 * the training log line). The logger is process-wide: its rank and level
 * are set once at start-up by tsr_log_configure().
 */
#ifndef TESSERA_LOG_H
#define TESSERA_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tsr_log_level {
    TSR_LOG_DEBUG = 0,
    TSR_LOG_INFO,
    TSR_LOG_WARN,
    TSR_LOG_ERROR,
    TSR_LOG_OFF
} tsr_log_level;

/* Sets this process's rank, world size and threshold level. */
void tsr_log_configure(int rank, int world_size, tsr_log_level level);

tsr_log_level tsr_log_threshold(void);
int tsr_log_rank(void);

/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int tsr_log_level_parse(const char *name);

void tsr_log(tsr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like tsr_log() but only rank 0 prints. */
void tsr_log_once(tsr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define TSR_DEBUG(...) tsr_log(TSR_LOG_DEBUG, __VA_ARGS__)
#define TSR_INFO(...) tsr_log(TSR_LOG_INFO, __VA_ARGS__)
#define TSR_WARN(...) tsr_log(TSR_LOG_WARN, __VA_ARGS__)
#define TSR_ERROR(...) tsr_log(TSR_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_LOG_H */
