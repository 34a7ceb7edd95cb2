/*
 * timer.h - monotonic wall-clock time for step timing and timeouts.
 *
 * CLOCK_MONOTONIC never jumps with NTP or the user changing the date, so
 * intervals measured with it are safe for throughput and watchdogs.
 */
#ifndef TESSERA_TIMER_H
#define TESSERA_TIMER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nanoseconds since an arbitrary fixed point. */
uint64_t tsr_time_ns(void);

/* Seconds since the same point, as a double. */
double tsr_time_s(void);

/* A stopwatch: accumulates the intervals between start and stop. */
typedef struct tsr_stopwatch {
    uint64_t started_ns; /* 0 when stopped */
    uint64_t total_ns;
    uint64_t count;
} tsr_stopwatch;

void tsr_stopwatch_start(tsr_stopwatch *sw);
void tsr_stopwatch_stop(tsr_stopwatch *sw);
void tsr_stopwatch_reset(tsr_stopwatch *sw);
double tsr_stopwatch_seconds(const tsr_stopwatch *sw);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_TIMER_H */
