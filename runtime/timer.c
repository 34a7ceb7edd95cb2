/*
 * timer.c - monotonic clock and stopwatches (see timer.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "tessera/timer.h"

#include <time.h>

uint64_t tsr_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double tsr_time_s(void)
{
    return (double)tsr_time_ns() * 1e-9;
}

void tsr_stopwatch_start(tsr_stopwatch *sw)
{
    sw->started_ns = tsr_time_ns();
}

void tsr_stopwatch_stop(tsr_stopwatch *sw)
{
    if (sw->started_ns == 0)
        return;
    sw->total_ns += tsr_time_ns() - sw->started_ns;
    sw->started_ns = 0;
    sw->count++;
}

void tsr_stopwatch_reset(tsr_stopwatch *sw)
{
    sw->started_ns = 0;
    sw->total_ns = 0;
    sw->count = 0;
}

double tsr_stopwatch_seconds(const tsr_stopwatch *sw)
{
    return (double)sw->total_ns * 1e-9;
}
