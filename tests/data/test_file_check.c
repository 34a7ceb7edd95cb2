/*
 * test_file_check.c - the checks on user-named files: a FIFO is refused
 * without blocking, directories and devices are named for what they are,
 * over-long paths and missing directories are the user's input
 * (TSR_ERR_INVALID_ARG, exit 2), and regular files and /dev/null pass.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/file_check.h"
#include "harness.h"

static char dir[] = "/tmp/tsr-file-check-XXXXXX";

static void path_in_dir(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void expect_refused(tsr_status st, const char *needle)
{
    CU_ASSERT_EQUAL(st, TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), needle));
}

static void test_inputs(void)
{
    char fifo[600], plain[600], sub[600];
    path_in_dir(fifo, sizeof fifo, "fifo");
    path_in_dir(plain, sizeof plain, "plain");
    path_in_dir(sub, sizeof sub, "plain/x");
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    FILE *f = fopen(plain, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    int fd = -1;
    /* returns at once although no process writes to the FIFO */
    expect_refused(tsr_file_open_input(fifo, "--x", &fd), "is a FIFO (named pipe), not a regular");
    CU_ASSERT_EQUAL(fd, -1);
    expect_refused(tsr_file_check_input(fifo, NULL), "fifo is a FIFO");
    expect_refused(tsr_file_check_input(dir, NULL), "is a directory, not a regular file");
    expect_refused(tsr_file_check_input("/dev/null", "--vocab-file"),
                   "--vocab-file /dev/null is a character device");
    expect_refused(tsr_file_check_input(sub, NULL), "a component of the path is not a directory");
    expect_refused(tsr_file_check_input("/nonexistent/x", NULL), "no such file or directory");
    expect_refused(tsr_file_check_stream(dir, "--input"), "is a directory");
    CU_ASSERT_EQUAL(tsr_file_check_stream(fifo, "--input"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_file_check_stream("/dev/null", "--input"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_file_open_input(plain, NULL, &fd), TSR_OK);
    CU_ASSERT(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL(remove(fifo), 0);
    CU_ASSERT_EQUAL(remove(plain), 0);
}

static void test_long_and_empty_paths(void)
{
    char *path = malloc(PATH_MAX + 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    memset(path, 'a', PATH_MAX + 9);
    path[PATH_MAX + 9] = '\0';
    expect_refused(tsr_file_check_input(path, NULL), "more than PATH_MAX");
    expect_refused(tsr_file_check_output(path, "--output"), "more than PATH_MAX");
    /* the message repeats only the start of the path */
    CU_ASSERT(strlen(tsr_last_error()) < 400);
    free(path);
    expect_refused(tsr_file_check_input("", "--topology"), "the path is empty");
}

static void test_outputs(void)
{
    char out[600], missing[600];
    path_in_dir(out, sizeof out, "job.sbatch");
    path_in_dir(missing, sizeof missing, "none/job.sbatch");
    CU_ASSERT_EQUAL(tsr_file_check_output(out, "--output"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_file_check_output("/dev/null", "--output"), TSR_OK);
    CU_ASSERT_EQUAL(tsr_file_check_output("relative-name", "--output"), TSR_OK);
    expect_refused(tsr_file_check_output(missing, "--output"), "none does not exist");
    expect_refused(tsr_file_check_output(dir, "--output"), "is a directory");
    CU_ASSERT_EQUAL(access(out, F_OK), -1); /* nothing was created */
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    static const tsr_test_case cases[] = {
        TSR_TEST(test_inputs),
        TSR_TEST(test_long_and_empty_paths),
        TSR_TEST(test_outputs),
    };
    static const tsr_test_suite suites[] = {TSR_SUITE("file_check", cases)};
    int rc = tsr_test_main(suites, 1);
    rmdir(dir);
    return rc;
}
