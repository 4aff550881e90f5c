#!/usr/bin/env bash
# Builds omo with AddressSanitizer and UndefinedBehaviorSanitizer and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build=build-test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DOMO_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "[test] clang-format check"
git ls-files -co --exclude-standard '*.c' '*.h' | xargs -r clang-format --dry-run -Werror
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
# Two at a time (tests against timing take turns, see CMakeLists.txt).
ctest --output-on-failure --timeout 900 -j"${OMO_TEST_JOBS:-2}"
