# tests/train.cmake — `reveal train` over stores, in one process and under mpirun (trainer/,
# docs/train.md). Each test is a script in tests/train/ that builds a small world into its own
# directory, runs the command and checks curves, exit codes and messages.
find_program(RV_MPIRUN NAMES mpirun mpiexec REQUIRED)
foreach(t equiv resume kill stop layout)
  rv_add_test(NAME mpi_train_${t}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/${t}.sh ${CMAKE_CURRENT_BINARY_DIR}/train_${t}
    LABELS mpi TIMEOUT 300 PROCESSORS 2)
endforeach()
# Knowledge edits and refresh through the command line (issue: memory updates without
# retraining). Both start MPI (label mpi: the sanitizer pass runs those without leak checks, as
# Open MPI's own allocations would be reported); edit_cli trains a small model first: labelled
# slow, so the sanitizer pass skips it.
rv_add_test(NAME edit_cli
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/edit.sh ${CMAKE_CURRENT_BINARY_DIR}/train_edit
  LABELS slow mpi TIMEOUT 600 PROCESSORS 2)
rv_add_test(NAME refresh_kill
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/refresh_kill.sh
    ${CMAKE_CURRENT_BINARY_DIR}/train_refresh_kill
  LABELS mpi TIMEOUT 300 PROCESSORS 2)
