#!/usr/bin/env bash
# End-to-end benchmark of `omo run`: a mock Kafka cluster, a durable private PostgreSQL, a
# generated retail day; sustained orders/s, latency at half that rate, and a floor that moves
# the same messages through the same cluster untouched. Then where the time went (perf).
#
#   bench/stream.sh [GEN OPTIONS] [-- STREAMBENCH OPTIONS]
#   e.g. bench/stream.sh --orders 100000 -- --partitions 16
#
# Builds Release into build-bench, generates the day into bench/out/stream/day (gen's defaults:
# 1,000 stores, 5,000 SKUs, 50,000 orders), runs build-bench/streambench on it and prints the
# figures. Logs, omo.yaml files, metrics and latencies are under bench/out/stream/.
# Exit 0 when the benchmark ran, whether or not the targets were met (it prints MISS), 1 when
# something failed.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-bench
out=bench/out/stream
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
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v perf >/dev/null 2>&1; then
  echo "[bench] installing: linux-perf" >&2
  if ! { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends linux-perf >/dev/null; }; then
    echo "[bench] linux-perf could not be installed: no profile" >&2
  fi
fi

echo "[bench] building Release into $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target gen omo streambench >"$build/stream-build.log" 2>&1 || {
  echo "[bench] build failed; the end of $build/stream-build.log:" >&2
  tail -20 "$build/stream-build.log" >&2
  exit 1
}

mkdir -p "$out/day"
echo "[bench] generating into $out/day/" >&2
"$build/gen" --out-dir "$out/day" "${gen_args[@]}" >&2

# perf on this machine: whole-system sampling needs the kernel's permission.
perf_args=()
if command -v perf >/dev/null 2>&1 && perf record -a -o "$out/perf.probe" -- true >/dev/null 2>&1; then
  perf_args=(--perf "$out/perf.data")
else
  echo "[bench] perf cannot sample this machine: no profile" >&2
fi
rm -f "$out/perf.probe" "$out/perf.data"

rc=0
"$build/streambench" --day "$out/day" --out "$out" --omo "$build/omo" "${perf_args[@]}" \
  "${bench_args[@]}" | tee "$out/result.txt" || rc=$?

if [ -s "$out/perf.data" ]; then
  omo_pid=$(sed -n 's/^perf: omo pid \([0-9]*\)$/\1/p' "$out/result.txt")
  ncpu=$(nproc)
  echo
  echo "Where the time goes during the throughput phase (perf, whole machine, ${ncpu} cores;"
  echo "percent of one core per thread, then the top symbols of omo and of PostgreSQL):"
  perf report -i "$out/perf.data" --stdio --sort pid --no-children --percentage absolute 2>/dev/null |
    awk -v n="$ncpu" '/^ *[0-9.]+%/ { sub("%", "", $1); if (c++ < 10) printf "  %5.1f%%  %s\n", $1 * n, $2 }'
  if [ -n "$omo_pid" ]; then
    echo "  omo (pid $omo_pid), all threads, by symbol:"
    perf report -i "$out/perf.data" --stdio --pid "$omo_pid" --sort dso,sym --no-children --percentage absolute \
      2>/dev/null | awk -v n="$ncpu" '/^ *[0-9.]+%/ { if (c++ < 15) { p = $1; sub("%", "", p); $1 = ""; printf "    %5.1f%% %s\n", p * n, $0 } }'
  fi
  pg_pids=$(sed -n 's/^perf: postgres pids \([0-9,]*\)$/\1/p' "$out/result.txt")
  echo "  omo's PostgreSQL backends (pids $pg_pids), by symbol:"
  perf report -i "$out/perf.data" --stdio --pid "$pg_pids" --sort dso,sym --no-children --percentage absolute \
    2>/dev/null | awk -v n="$ncpu" '/^ *[0-9.]+%/ { if (c++ < 10) { p = $1; sub("%", "", p); $1 = ""; printf "    %5.1f%% %s\n", p * n, $0 } }'
fi
exit "$rc"
