/*
 * mpi_tuning.c - corrects, through the MPI tool interface (MPI_T control
 * variables), algorithm choices an MPI library makes badly for tessera's
 * calls, which are all non-blocking underneath (the watchdog polls them).
 *
 * Open MPI 4.1's non-blocking reduce (coll/libnbc) picks its "chain"
 * algorithm for 2-4 ranks and large messages: the message moves in small
 * segments, one schedule round each, so it advances only as fast as the
 * caller's MPI_Test calls and reaches 25-45% of the blocking MPI_Reduce's
 * bandwidth (bench/collectives, 2 ranks, 1-64 MiB). Its binomial algorithm
 * sends each child's data in one round and matches the blocking call.
 * A user's own setting (environment, MCA parameter file) shows up as a
 * value other than "ignore" and is left alone; libraries without the
 * variable (MPICH, other Open MPI versions) are left alone too.
 */
#include <string.h>

#include "comm_internal.h"
#include "tessera/log.h"

/* The value of an enumerated control variable's item called `item`. */
static bool enum_value(MPI_T_enum e, const char *item, int *value)
{
    int n = 0;
    char name[64];
    if (MPI_T_enum_get_info(e, &n, name, &(int){sizeof name}) != MPI_SUCCESS)
        return false;
    for (int i = 0; i < n; i++) {
        int v = 0, len = (int)sizeof name;
        if (MPI_T_enum_get_item(e, i, &v, name, &len) == MPI_SUCCESS && strcmp(name, item) == 0) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* Sets integer control variable `var` to its enumerator `item` when it
 * still holds `unset_item`; says what it did at debug level. */
static void choose(const char *var, const char *unset_item, const char *item)
{
    int index = -1;
    if (MPI_T_cvar_get_index(var, &index) != MPI_SUCCESS)
        return; /* not this library */
    char name[128], desc[8];
    int name_len = (int)sizeof name, desc_len = (int)sizeof desc, verbosity = 0, bind = 0,
        scope = 0;
    MPI_Datatype type;
    MPI_T_enum e;
    if (MPI_T_cvar_get_info(index, name, &name_len, &verbosity, &type, &e, desc, &desc_len, &bind,
                            &scope) != MPI_SUCCESS ||
        type != MPI_INT || e == MPI_T_ENUM_NULL || bind != MPI_T_BIND_NO_OBJECT)
        return;
    int unset = 0, wanted = 0;
    if (!enum_value(e, unset_item, &unset) || !enum_value(e, item, &wanted))
        return;
    MPI_T_cvar_handle handle;
    int count = 0, current = 0;
    if (MPI_T_cvar_handle_alloc(index, NULL, &handle, &count) != MPI_SUCCESS)
        return;
    if (count == 1 && MPI_T_cvar_read(handle, &current) == MPI_SUCCESS) {
        if (current != unset)
            tsr_log(TSR_LOG_DEBUG, "MPI %s left at the user's choice %d", var, current);
        else if (MPI_T_cvar_write(handle, &wanted) == MPI_SUCCESS)
            tsr_log(TSR_LOG_DEBUG, "MPI %s set to %s", var, item);
    }
    MPI_T_cvar_handle_free(&handle);
}

void tsr_comm_mpi_tune(void)
{
    int provided = 0;
    MPI_Query_thread(&provided);
    if (MPI_T_init_thread(provided, &provided) != MPI_SUCCESS)
        return;
    choose("coll_libnbc_ireduce_algorithm", "ignore", "binomial");
    MPI_T_finalize();
}
