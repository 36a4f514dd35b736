# Country-flags data builder (tools/flags, docs/data.md). One end-to-end check of a --quick
# build; it installs the npm packages from the lock file on its first run (needs the npm
# registry), later runs reuse them. Labelled slow: it is Python over packaged data, so the
# sanitizer pass, which re-runs the C tests, has nothing to add.
rv_add_test(NAME flags_build
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/flags_check.py
  LABELS slow data TIMEOUT 300)
