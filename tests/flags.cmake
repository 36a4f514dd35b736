# Country-flags data builder (tools/flags, docs/data.md). One end-to-end check of a --quick
# build; it installs the npm packages from the lock file on its first run (needs the npm
# registry), later runs reuse them. Labelled slow: it is Python over packaged data, so the
# sanitizer pass, which re-runs the C tests, has nothing to add.
rv_add_test(NAME flags_build
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/flags_check.py
  LABELS slow data TIMEOUT 300)

# The README demo, --quick: flags data (every 8th country) → four stores → `mpirun -np 5` training
# with edit rounds → refresh → the dev table → the baseline → one answer. Checks that every step
# ran and produced its output (tests/demo_check.sh); the learning figures of the full demo are
# in docs/results.md.
rv_add_test(NAME flags_demo_quick
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/demo_check.sh ${CMAKE_CURRENT_BINARY_DIR}/demo_quick
  LABELS slow data mpi TIMEOUT 900 PROCESSORS 2)
