/*
 * test_mpi_tuning.c - the MPI library's algorithm choices that
 * collectives/mpi_tuning.c corrects: after the world communicator exists,
 * Open MPI's non-blocking reduce uses its binomial algorithm, unless the
 * user chose one (OMPI_MCA_coll_libnbc_ireduce_algorithm), which stays.
 * Under an MPI without the variable there is nothing to check.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "harness.h"

/* Name of the enumerator the variable holds now, or "" if it does not exist. */
static void ireduce_algorithm(char *out, int cap)
{
    out[0] = '\0';
    int provided = 0, index = -1;
    MPI_Query_thread(&provided);
    CU_ASSERT_EQUAL_FATAL(MPI_T_init_thread(provided, &provided), MPI_SUCCESS);
    if (MPI_T_cvar_get_index("coll_libnbc_ireduce_algorithm", &index) == MPI_SUCCESS) {
        char name[128], desc[8];
        int name_len = (int)sizeof name, desc_len = (int)sizeof desc, verbosity, bind, scope;
        int count = 0, value = -1, n = 0, len = cap;
        MPI_Datatype type;
        MPI_T_enum e;
        MPI_T_cvar_handle h;
        CU_ASSERT_EQUAL(MPI_T_cvar_get_info(index, name, &name_len, &verbosity, &type, &e, desc,
                                            &desc_len, &bind, &scope),
                        MPI_SUCCESS);
        CU_ASSERT_EQUAL(MPI_T_cvar_handle_alloc(index, NULL, &h, &count), MPI_SUCCESS);
        CU_ASSERT_EQUAL(MPI_T_cvar_read(h, &value), MPI_SUCCESS);
        MPI_T_cvar_handle_free(&h);
        char ename[64];
        MPI_T_enum_get_info(e, &n, ename, &(int){sizeof ename});
        for (int i = 0; i < n; i++) {
            int v = -2;
            len = cap;
            if (MPI_T_enum_get_item(e, i, &v, out, &len) == MPI_SUCCESS && v == value)
                break;
            out[0] = '\0';
        }
        CU_ASSERT_NOT_EQUAL(out[0], '\0'); /* the value is one of its enumerators */
    }
    MPI_T_finalize();
}

static void test_world_sets_binomial_ireduce_unless_user_chose(void)
{
    char before[64], after[64];
    ireduce_algorithm(before, sizeof before);
    tsr_comm_options opts = {TSR_BACKEND_MPI, 120.0, "world"};
    tsr_comm *world = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_comm_create_world(MPI_COMM_WORLD, &opts, &world), TSR_OK);
    ireduce_algorithm(after, sizeof after);
    if (before[0] == '\0') {
        CU_ASSERT_STRING_EQUAL(after, ""); /* not Open MPI's libnbc: nothing to tune */
    } else if (getenv("OMPI_MCA_coll_libnbc_ireduce_algorithm") != NULL) {
        CU_ASSERT_STRING_EQUAL(after, before);
        CU_ASSERT_STRING_EQUAL(after, "chain"); /* what the test sets */
    } else {
        CU_ASSERT_STRING_EQUAL(before, "ignore");
        CU_ASSERT_STRING_EQUAL(after, "binomial");
    }
    tsr_comm_destroy(world);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_world_sets_binomial_ireduce_unless_user_chose),
};

int main(int argc, char **argv)
{
    const tsr_test_suite suites[] = {TSR_SUITE("mpi_tuning", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
