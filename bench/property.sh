#!/usr/bin/env bash
# The property test at its long size: bench/property.sh [INSTANCES_PER_FAMILY]
# The suite runs 100 instances of each of the seven families; this runs 500 of each by default
# (the size the suite used to run), under ASan and UBSan as the suite does, and prints the time.
# A failure names its seed: replay it with OMO_PROP_SEED=SEED OMO_PROP_COUNT=1.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-500}"
build=build-test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DOMO_SANITIZE=ON >/dev/null
cmake --build "$build" -j2 --target test_property >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMO_PROP_COUNT="$count"
start=$(date +%s)
"$build/test_property" --jobs=1 2>&1 | grep -E '^property/|Synthesis'
echo "[property] $count instances per family in $(($(date +%s) - start)) s"
