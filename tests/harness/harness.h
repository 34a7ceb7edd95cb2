/*
 * harness.h - the small layer over CUnit that every test binary uses.
 *
 * A test file lists its cases in tsr_test_case arrays, groups them into
 * suites and calls tsr_test_main() (one process) or tsr_test_mpi_main()
 * (every rank of an mpirun job runs the suites; the exit code is non-zero
 * on every rank if any rank saw a failure). A binary that ran no test
 * fails too, so a mistyped registration cannot pass silently.
 */
#ifndef TSR_TEST_HARNESS_H
#define TSR_TEST_HARNESS_H

#include <CUnit/CUnit.h>
#include <math.h>
#include <stddef.h>

typedef struct tsr_test_case {
    const char *name;
    void (*run)(void);
} tsr_test_case;

typedef struct tsr_test_suite {
    const char *name;
    const tsr_test_case *cases;
    size_t count;
} tsr_test_suite;

#define TSR_TEST(fn) {#fn, fn}
#define TSR_SUITE(name, cases) {name, cases, sizeof cases / sizeof cases[0]}

int tsr_test_main(const tsr_test_suite *suites, size_t count);

/* Initialises MPI, runs the suites on every rank, finalises MPI. */
int tsr_test_mpi_main(int *argc, char ***argv, const tsr_test_suite *suites, size_t count);

/* |a-b| / max(|b|, tiny) */
double tsr_test_rel_error(double actual, double expected);

/* ||a-b||_2 / ||b||_2 over n floats (absolute L2 if ||b|| is 0). */
double tsr_test_rel_l2(const float *actual, const float *expected, size_t n);

/* The whole file at path in a malloc'ed buffer (*len bytes, plus a NUL
 * after them); NULL if it cannot be read. */
char *tsr_test_read_file(const char *path, size_t *len);

#define TSR_ASSERT_REL(actual, expected, tol)                                                 \
    CU_ASSERT_TRUE(tsr_test_rel_error((double)(actual), (double)(expected)) <= (tol))

#endif /* TSR_TEST_HARNESS_H */
