/*
 * harness.c - runs CUnit suites and turns their result into an exit code.
 */
#include "harness.h"

#include <CUnit/Basic.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int register_suites(const tsr_test_suite *suites, size_t count)
{
    for (size_t s = 0; s < count; s++) {
        CU_pSuite suite = CU_add_suite(suites[s].name, NULL, NULL);
        if (suite == NULL)
            return -1;
        for (size_t c = 0; c < suites[s].count; c++)
            if (CU_add_test(suite, suites[s].cases[c].name, suites[s].cases[c].run) == NULL)
                return -1;
    }
    return 0;
}

/* Runs the registered suites; returns failures (assertions and tests),
 * counting "no test ran" as a failure. */
static unsigned run_suites(const tsr_test_suite *suites, size_t count, int verbose)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: cannot initialise the registry: %s\n", CU_get_error_msg());
        return 1;
    }
    if (register_suites(suites, count) != 0) {
        fprintf(stderr, "CUnit: cannot register tests: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(verbose ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    if (!verbose && failures > 0)
        CU_basic_show_failures(CU_get_failure_list());
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran: the test binary registered nothing\n");
        return 1;
    }
    return failures;
}

int tsr_test_main(const tsr_test_suite *suites, size_t count)
{
    unsigned failures = run_suites(suites, count, 1);
    printf("\n");
    return failures == 0 ? 0 : 1;
}

int tsr_test_mpi_main(int *argc, char ***argv, const tsr_test_suite *suites, size_t count)
{
    MPI_Init(argc, argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    unsigned failures = run_suites(suites, count, rank == 0);
    unsigned total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_UNSIGNED, MPI_SUM, MPI_COMM_WORLD);
    if (failures > 0)
        fprintf(stderr, "rank %d of %d: %u failure(s)\n", rank, size, failures);
    if (rank == 0)
        printf("\n%d ranks, %u failure(s) in all\n", size, total);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}

double tsr_test_rel_error(double actual, double expected)
{
    double scale = fabs(expected) > 1e-30 ? fabs(expected) : 1e-30;
    return fabs(actual - expected) / scale;
}

double tsr_test_rel_l2(const float *actual, const float *expected, size_t n)
{
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)actual[i] - (double)expected[i];
        diff += d * d;
        norm += (double)expected[i] * (double)expected[i];
    }
    return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

char *tsr_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}
