#!/usr/bin/env bash
# Times `omo solve` against the parse-only floor on one generated retail day.
#
#   bench/solve.sh [GEN OPTIONS]    e.g. bench/solve.sh --orders 100000 --seed 3
#
# Builds Release into build-bench, generates the day into bench/out/ (gen's defaults: 1,000
# stores, 5,000 SKUs, 50,000 orders, about 600,000 events), runs each program RUNS times
# (default 3) and reports the fastest wall time and the largest peak RSS of each.
# Targets: omo/floor time ratio <= 2.0, omo peak RSS < 1 GiB. Exit 0 when both are met.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
build=build-bench
out=bench/out

scripts/deps.sh
# GNU time reports a child's peak RSS (getrusage ru_maxrss); it is the Debian package `time`.
if ! [ -x /usr/bin/time ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "[bench] installing: time" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends time >/dev/null
fi

echo "[bench] building Release into $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target gen floor >/dev/null
omo_built=1
if ! cmake --build "$build" -j"$(nproc)" --target omo >"$build/omo-build.log" 2>&1; then
  omo_built=0
  echo "[bench] omo does not build (see $build/omo-build.log); measuring the floor alone" >&2
fi

mkdir -p "$out"
echo "[bench] generating into $out/" >&2
"$build/gen" --out-dir "$out" "$@"
events=$(wc -l <"$out/events.jsonl")
orders=$(grep -c '"type":"order.created"' "$out/events.jsonl" || true)

# measure NAME CMD...: runs CMD $runs times; sets secs (fastest wall clock), cpu (user + system
# seconds of that run: omo solve parses on a second thread) and rss_mib (largest peak RSS).
# The command's output goes to $out/NAME.log.
measure() {
  local name=$1
  shift
  secs="" cpu="" rss_mib=0
  local i start end t kib c
  for ((i = 1; i <= runs; i++)); do
    start=$(date +%s%N)
    if ! /usr/bin/time -f '%M %U %S' -o "$out/$name.rss" "$@" >"$out/$name.log" 2>&1; then
      echo "[bench] $name failed; the end of $out/$name.log:" >&2
      tail -5 "$out/$name.log" >&2
      return 1
    fi
    end=$(date +%s%N)
    t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    read -r kib c < <(tail -1 "$out/$name.rss" | awk '{ printf "%d %.2f\n", $1, $2 + $3 }')
    echo "[bench] $name run $i: ${t}s (cpu ${c}s), peak RSS $((kib / 1024)) MiB" >&2
    if [ -z "$secs" ] || awk -v t="$t" -v s="$secs" 'BEGIN { exit !(t < s) }'; then
      secs=$t cpu=$c
    fi
    rss_mib=$(awk -v k="$kib" -v m="$rss_mib" 'BEGIN { r = k / 1024; printf "%.1f", (r > m ? r : m) }')
  done
}

row() { # NAME SECS CPU RSS_MIB
  awk -v n="$1" -v s="$2" -v c="$3" -v r="$4" -v o="$orders" \
    'BEGIN { printf "%-10s %10.3f %10.2f %12.0f %14.1f\n", n, s, c, (s > 0 ? o / s : 0), r }'
}

measure floor "$build/floor" --events "$out/events.jsonl" --out "$out/floor.jsonl"
floor_secs=$secs floor_cpu=$cpu floor_rss=$rss_mib

status=0
if ((omo_built)); then
  if measure omo "$build/omo" solve --network "$out/network.yaml" --rules "$out/routing.yaml" \
    --events "$out/events.jsonl" --out "$out/alloc.jsonl"; then
    omo_secs=$secs omo_cpu=$cpu omo_rss=$rss_mib
  else
    omo_built=0
    status=1
  fi
fi

echo
printf 'events %d, orders %d (%s)\n' "$events" "$orders" "gen ${*:-defaults}"
printf '%-10s %10s %10s %12s %14s\n' program seconds "cpu s" orders/s "peak RSS MiB"
((omo_built)) && row "omo solve" "$omo_secs" "$omo_cpu" "$omo_rss"
row floor "$floor_secs" "$floor_cpu" "$floor_rss"
if ((omo_built)); then
  allocs=$(wc -l <"$out/alloc.jsonl")
  ratio=$(awk -v a="$omo_secs" -v b="$floor_secs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf 'allocations written: %d\n' "$allocs"
  verdict() { awk -v v="$1" -v lim="$2" "BEGIN { exit !(v $3 lim) }" && echo met || echo MISSED; }
  time_ok=$(verdict "$ratio" 2.0 '<=')
  rss_ok=$(verdict "$omo_rss" 1024 '<')
  printf 'ratio omo/floor: %s (target <= 2.0: %s)\n' "$ratio" "$time_ok"
  printf 'omo peak RSS: %s MiB (target < 1024 MiB: %s)\n' "$omo_rss" "$rss_ok"
  [ "$time_ok" = met ] && [ "$rss_ok" = met ] || status=1
else
  echo "omo solve: not measured"
  status=1
fi
exit $status
