#!/usr/bin/env bash
# Reads beside the stream: the national network and its opening stock, then a day streaming at
# 1,000 orders/s through `omo run`, first alone, then while client threads send POST /promise
# (random baskets of the day: 1-4 lines, ship and pickup) and GET /availability (random SKUs)
# back to back. Prints requests/s, p50 and p99 for each, and the stream's p99 decision latency
# with and without the readers (their ratio).
#
#   bench/promise.sh [GEN OPTIONS] [-- STREAMBENCH OPTIONS]
#   e.g. bench/promise.sh --orders 20000 -- --readers 8,8
#
# Builds Release into build-bench, generates the day into bench/out/promise/day (gen's
# defaults: 1,000 stores, 10 warehouses, 5,000 SKUs, 50,000 orders), prints what a promise costs
# against a decision in one process (build-bench/promisecost), then runs build-bench/streambench
# --latency-only --rate 1000 --readers 8,4 on it. Logs under bench/out/promise/.
# Exit 0 when the benchmark ran, whether or not the targets were met (it prints MISS).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-bench
out=bench/out/promise
gen_args=()
bench_args=()
while (($#)); do
  if [ "$1" = "--" ]; then
    shift
    bench_args=("$@")
    break
  fi
  gen_args+=("$1")
  shift
done

scripts/deps.sh
echo "[bench] building Release into $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target gen omo streambench promisecost >"$build/promise-build.log" 2>&1 || {
  echo "[bench] build failed; the end of $build/promise-build.log:" >&2
  tail -20 "$build/promise-build.log" >&2
  exit 1
}
mkdir -p "$out/day"
echo "[bench] generating into $out/day/" >&2
"$build/gen" --out-dir "$out/day" "${gen_args[@]}" >&2
# What a promise costs against a decision, in one process (no HTTP, no Kafka): a ratio measured
# in the same run.
"$build/promisecost" "$out/day" 20000 2 | tee "$out/result.txt"
"$build/streambench" --day "$out/day" --out "$out" --omo "$build/omo" --latency-only --no-floor \
  --rate 1000 --readers 8,4 "${bench_args[@]}" | tee -a "$out/result.txt"
