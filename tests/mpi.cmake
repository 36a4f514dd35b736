# tests/mpi.cmake — the MPI layer (comm/, worker/ layout, role, client). Each test executable
# is its own driver: it builds stores, then runs itself under mpirun (-np ≤ 5, oversubscribed:
# the machine has 2 cores) with a time limit, and checks how the job ended.
find_program(RV_MPIRUN NAMES mpirun mpiexec REQUIRED)
foreach(t comm topk layout garbled kill)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_mpi_${t}.c)
    rv_add_test(NAME mpi_${t} SOURCES test_mpi_${t}.c LIBS rv_worker rv_comm rv_memstore
      LABELS mpi ARGS ${RV_MPIRUN} TIMEOUT 300 PROCESSORS 2)
  endif()
endforeach()
