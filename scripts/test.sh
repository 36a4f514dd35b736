#!/usr/bin/env bash
# The test command (README): installs what is missing, builds, runs the whole suite, then the
# fast tests again under AddressSanitizer + UBSan, the fuzz targets briefly, and cppcheck.
# Environment: TEST_ONLY=regex limits ctest to matching tests; SKIP_SAN=1 / SKIP_FUZZ=1 skip
# those passes (for quick local iterations; CI runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

# One BLAS thread per process: tests run several ranks on 2 cores (ranks × threads ≤ cores).
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
jobs=$(nproc)
filter=()
if [[ -n "${TEST_ONLY:-}" ]]; then filter=(-R "$TEST_ONLY"); fi

echo "== build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREVEAL_WERROR=ON >/dev/null
cmake --build build -j"$jobs" 2>&1 | grep -v '^\[' || true
test "${PIPESTATUS[0]}" -eq 0

echo "== tests"
(cd build && ctest --output-on-failure -j"$jobs" "${filter[@]}")

if [[ -z "${SKIP_SAN:-}" ]]; then
  echo "== tests under AddressSanitizer + UBSan (label 'slow' excluded)"
  cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DREVEAL_SANITIZE=ON -DREVEAL_WERROR=ON >/dev/null
  cmake --build build-san -j"$jobs" >/dev/null
  # Open MPI's own allocations are never freed at exit; leaks in our code show under the
  # non-MPI tests, which run with leak detection on.
  (cd build-san && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" -LE 'slow|mpi' "${filter[@]}")
  (cd build-san && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j1 -L mpi -LE slow "${filter[@]}") || exit 1
fi

if [[ -z "${SKIP_FUZZ:-}" ]]; then
  echo "== fuzz targets, bounded runs (clang + libFuzzer)"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DREVEAL_FUZZ=ON -DREVEAL_WERROR=ON >/dev/null
  cmake --build build-fuzz -j"$jobs" >/dev/null
  (cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)
fi

echo "== formatting (clang-format, .clang-format)"
clang-format --dry-run --Werror $(git ls-files '*.c' '*.h' '*.cc')

echo "== static check (cppcheck)"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
  --suppress=missingIncludeSystem --std=c11 -I common \
  $(git ls-files '*.c' '*.h' | grep -v '^proto/.*pb-c') 
echo "== all checks passed"
