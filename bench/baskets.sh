#!/usr/bin/env bash
# Decision time of big baskets on the national network and its opening stock.
#
#   bench/baskets.sh [ORDERS]     (default 2000 orders per basket size)
#
# Builds Release into build-bench, generates the national day with gen (its network, rules and
# opening stock; the day's own orders are not used), then for 10, 20, 40 and 64 lines decides
# ORDERS baskets of that many lines on a fresh engine (bench/baskets.c: popular and long-tail
# SKUs, some SKUs on two lines, ship and pickup), timing each decision. Prints per size p50,
# p99 and max decision time, how many decisions were proven optimal, the largest reported gap
# and how many unproven plans might miss units. Targets: p99 <= 5 ms at 10 lines and <= 50 ms at
# 64, max <= 500 ms at any size, >= 99% proven at 64 lines, every gap <= 0.5%. Exit 0 when all
# are met. Times are wall clock: on a loaded machine they are noisy, the counts are not.
set -euo pipefail
cd "$(dirname "$0")/.."

orders=${1:-2000}
build=build-bench
out=bench/out

scripts/deps.sh
echo "[bench] building Release into $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target gen baskets >/dev/null
mkdir -p "$out"
if ! [ -s "$out/events.jsonl" ]; then
  echo "[bench] generating the national day into $out/" >&2
  "$build/gen" --out-dir "$out" >/dev/null
fi

status=0
printf '%6s %7s %9s %9s %9s %8s %9s %8s %10s\n' lines orders "p50 ms" "p99 ms" "max ms" proven \
  decisions "gap %" units-open
for lines in 10 20 40 64; do
  row=$("$build/baskets" --network "$out/network.yaml" --rules "$out/routing.yaml" \
    --stock "$out/events.jsonl" --lines "$lines" --orders "$orders")
  echo "$row"
  read -r _ _ p50 p99 max proven decisions gap open <<<"$row"
  ok() { awk "BEGIN { exit !($1) }"; }
  case $lines in
  10) ok "$p99 <= 5" || { echo "  MISSED: p99 <= 5 ms at 10 lines"; status=1; } ;;
  64)
    ok "$p99 <= 50" || { echo "  MISSED: p99 <= 50 ms at 64 lines"; status=1; }
    ok "$proven >= 0.99 * $decisions" || { echo "  MISSED: >= 99% proven at 64 lines"; status=1; }
    ;;
  esac
  ok "$max <= 500" || { echo "  MISSED: max <= 500 ms"; status=1; }
  ok "$gap <= 0.5 && $open == 0" || { echo "  MISSED: every gap <= 0.5%"; status=1; }
done
exit $status
