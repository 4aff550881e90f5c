#!/usr/bin/env bash
# Months of history, not one day: N generated days of the national network streamed through
# `omo run` with retain_days 7 (a mock Kafka cluster, a durable private PostgreSQL), the service
# killed with SIGKILL and restarted before each day. Prints per day: the time from the process's
# start to its first decision, the view's rebuild time, the database's size, the service's RSS,
# the slowest of 10 explain calls, and the stream's decision p99 without ops calls and while
# 10 explain and 2 rules diff calls run.
#
#   bench/history.sh [--days N] [--stores N] [--skus N] [--orders N] [--retain N]
#   (defaults: 14 days of 1,000 stores, 5,000 SKUs, 50,000 orders a day, retain 7)
#
# Targets (contract section 11): restart on day 14 within 1.2x of day 2 and under 5 s; database
# size and RSS on day 14 within 1.1x of day 8; explain under 100 ms; the stream's p99 with ops
# calls not more than 20 % above its p99 without.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-bench
scripts/deps.sh
echo "[bench] building Release into $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target gen omo history >"$build/history-build.log" 2>&1 || {
  echo "[bench] build failed; the end of $build/history-build.log:" >&2
  tail -20 "$build/history-build.log" >&2
  exit 1
}
exec "$build/history" --omo "$build/omo" "$@"
