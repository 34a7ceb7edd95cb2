/*
 * test_status.c - status names, last-error messages, exit codes, timer.
 */
#include <string.h>

#include "harness.h"
#include "tessera/log.h"
#include "tessera/status.h"
#include "tessera/timer.h"

static void test_every_status_has_a_name(void)
{
    for (int s = 0; s < TSR_STATUS_COUNT; s++) {
        const char *name = tsr_status_string((tsr_status)s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_TRUE(strlen(name) > 0);
        CU_ASSERT_STRING_NOT_EQUAL(name, "unknown status");
    }
    CU_ASSERT_STRING_EQUAL(tsr_status_string((tsr_status)999), "unknown status");
}

static void test_error_set_returns_status_and_keeps_message(void)
{
    tsr_error_clear();
    CU_ASSERT_STRING_EQUAL(tsr_last_error(), "");
    tsr_status st = tsr_error_set(TSR_ERR_IO, "cannot open %s (%d)", "x.h5", 7);
    CU_ASSERT_EQUAL(st, TSR_ERR_IO);
    CU_ASSERT_STRING_EQUAL(tsr_last_error(), "cannot open x.h5 (7)");
}

static void test_long_message_is_truncated_not_overflowed(void)
{
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tsr_error_set(TSR_ERR_INTERNAL, "%s", big);
    size_t len = strlen(tsr_last_error());
    CU_ASSERT_TRUE(len > 1000 && len < sizeof big - 1);
}

static void test_exit_codes(void)
{
    CU_ASSERT_EQUAL(tsr_status_exit_code(TSR_OK), 0);
    CU_ASSERT_EQUAL(tsr_status_exit_code(TSR_ERR_INVALID_ARG), 2);
    CU_ASSERT_EQUAL(tsr_status_exit_code(TSR_ERR_FORMAT), 2);
    CU_ASSERT_EQUAL(tsr_status_exit_code(TSR_ERR_COMM), 1);
    CU_ASSERT_EQUAL(tsr_status_exit_code(TSR_ERR_TIMEOUT), 1);
}

static void test_log_level_names(void)
{
    CU_ASSERT_EQUAL(tsr_log_level_parse("debug"), TSR_LOG_DEBUG);
    CU_ASSERT_EQUAL(tsr_log_level_parse("WARN"), TSR_LOG_WARN);
    CU_ASSERT_EQUAL(tsr_log_level_parse("off"), TSR_LOG_OFF);
    CU_ASSERT_EQUAL(tsr_log_level_parse("loud"), -1);
    tsr_log_configure(3, 8, TSR_LOG_WARN);
    CU_ASSERT_EQUAL(tsr_log_rank(), 3);
    CU_ASSERT_EQUAL(tsr_log_threshold(), TSR_LOG_WARN);
    tsr_log_configure(0, 1, TSR_LOG_INFO);
}

static void test_timer_is_monotonic_and_stopwatch_accumulates(void)
{
    uint64_t a = tsr_time_ns(), b = tsr_time_ns();
    CU_ASSERT_TRUE(b >= a);
    tsr_stopwatch sw = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        tsr_stopwatch_start(&sw);
        tsr_stopwatch_stop(&sw);
    }
    CU_ASSERT_EQUAL(sw.count, 3);
    tsr_stopwatch_stop(&sw); /* stop without start changes nothing */
    CU_ASSERT_EQUAL(sw.count, 3);
    CU_ASSERT_TRUE(tsr_stopwatch_seconds(&sw) >= 0.0);
    tsr_stopwatch_reset(&sw);
    CU_ASSERT_EQUAL(sw.total_ns, 0);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_every_status_has_a_name),
    TSR_TEST(test_error_set_returns_status_and_keeps_message),
    TSR_TEST(test_long_message_is_truncated_not_overflowed),
    TSR_TEST(test_exit_codes),
    TSR_TEST(test_log_level_names),
    TSR_TEST(test_timer_is_monotonic_and_stopwatch_accumulates),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("status", cases)};
    return tsr_test_main(suites, 1);
}
