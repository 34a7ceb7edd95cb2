# Helpers that register tests with CTest.
#
#   tsr_add_unit_test(NAME <name> SOURCES <src...> [LIBS <lib...>] [LABELS <l...>])
#     a CUnit test binary, labelled "unit"
#   tsr_add_mpi_test(NAME <name> NP <n> COMMAND <exe-or-target> [ARGS <a...>]
#                    [LABELS <l...>] [TIMEOUT <s>])
#     runs the command under `mpirun -np <n> --oversubscribe`, labelled "mpi"
#
# Multi-rank tests run with up to 8 ranks on 2 cores: ranks yield when idle
# so that oversubscription does not starve the rank that has work.
set(TSR_MPI_TEST_ENV
    OMPI_ALLOW_RUN_AS_ROOT=1
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_mpi_yield_when_idle=1
    OMPI_MCA_btl_vader_single_copy_mechanism=none
    OMPI_MCA_rmaps_base_oversubscribe=1
    OMPI_MCA_hwloc_base_binding_policy=none
    OMP_NUM_THREADS=1
    OPENBLAS_NUM_THREADS=1)
if(TSR_SANITIZE)
  list(APPEND TSR_MPI_TEST_ENV
       "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/harness/lsan.supp:print_suppressions=0"
       "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0"
       "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()

function(tsr_add_unit_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE tsr_test_harness ${T_LIBS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "unit;${T_LABELS}" TIMEOUT 300
                       ENVIRONMENT "${TSR_MPI_TEST_ENV}")
endfunction()

function(tsr_add_mpi_test)
  cmake_parse_arguments(T "" "NAME;NP;COMMAND;TIMEOUT" "ARGS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(TARGET ${T_COMMAND})
    set(exe $<TARGET_FILE:${T_COMMAND}>)
  else()
    set(exe ${T_COMMAND})
  endif()
  add_test(NAME ${T_NAME}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP} --oversubscribe
                   ${MPIEXEC_PREFLAGS} ${exe} ${T_ARGS})
  set(procs ${T_NP})
  if(procs GREATER 2)
    set(procs 2)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "mpi;${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       PROCESSORS ${procs} ENVIRONMENT "${TSR_MPI_TEST_ENV}")
endfunction()
