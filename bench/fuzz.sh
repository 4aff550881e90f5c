#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer: bench/fuzz.sh [-runs N | -time SECONDS] [TARGET...]
# Targets (tests/fuzz/fuzz_*.c): event network rules svcconf confirm tz; all when none is named.
# Builds with clang into build-fuzz/ (-fsanitize=fuzzer,address,undefined), seeds each corpus
# from tests/fixtures/ and config/ (the tz one from the system's zone database), runs the
# targets one after the other and prints executions, seconds and findings per target. Findings
# (crash-*, leak-*, timeout-*, oom-*) are kept in bench/out/fuzz/TARGET/; exit 1 when any.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-runs=1000000)
targets=()
while (($#)); do
  case "$1" in
    -runs) limit=(-runs="$2"); shift 2 ;;
    -time) limit=(-max_total_time="$2"); shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(event network rules svcconf confirm tz)

# clang and its runtime (libFuzzer) only here, not in the main test dependencies.
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
scripts/deps.sh

build=build-fuzz
CC=clang cmake -S . -B "$build" -DOMO_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >/dev/null

out=bench/out/fuzz
seed() { # seed TARGET FILE...: each file becomes one corpus entry
  local dir="$out/$1/seeds"
  shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/$(echo "$f" | tr '/' '_')"; done
}
seed_lines() { # seed_lines TARGET N FILE...: the first N lines of each file, one entry each
  local t="$1" n="$2" dir="$out/$1/seeds"
  shift 2
  mkdir -p "$dir"
  for f in "$@"; do
    head -n "$n" "$f" | awk -v d="$dir" -v b="$(basename "$f")" '{ print > (d "/" b "-" NR) }'
  done
}
prepare() {
  local t="$1"
  rm -rf "$out/$t/seeds"
  mkdir -p "$out/$t/corpus"
  case "$t" in
    event)
      seed_lines event 400 config/day.jsonl
      seed_lines event 100 tests/fixtures/*.jsonl
      grep -h '"type":"stock.delta"\|"type":"order.cancelled"\|pickup' config/day.jsonl |
        head -n 200 >"$out/event/extra.jsonl" || true
      seed_lines event 200 "$out/event/extra.jsonl" ;;
    network) seed network config/network.yaml tests/fixtures/*.yaml ;;
    rules) seed rules config/routing.yaml tests/fixtures/*.yaml ;;
    svcconf) seed svcconf tests/fixtures/omo_*.yaml tests/fixtures/broken_omo_*.yaml ;;
    confirm)
      mkdir -p "$out/confirm/seeds"
      printf '%s' '{"lines":[{"line_id":"1","picked":1,"reason":"not_found"}]}' >"$out/confirm/seeds/a"
      printf '%s' '{"lines":[{"line_id":"1","picked":0,"reason":"damaged"},{"line_id":"2","picked":2}]}' >"$out/confirm/seeds/b"
      printf '%s' '{}' >"$out/confirm/seeds/c"
      grep -h 'pick.confirmed' tests/fixtures/*.jsonl | head -n 50 >"$out/confirm/picks.jsonl" || true
      seed_lines confirm 50 "$out/confirm/picks.jsonl" ;;
    tz)
      seed tz /usr/share/zoneinfo/UTC /usr/share/zoneinfo/America/New_York \
        /usr/share/zoneinfo/Europe/London /usr/share/zoneinfo/Asia/Kolkata \
        /usr/share/zoneinfo/Australia/Lord_Howe /usr/share/zoneinfo/America/Sao_Paulo \
        /usr/share/zoneinfo/Pacific/Chatham /usr/share/zoneinfo/America/St_Johns ;;
  esac
}

# No allocation stacks (reports keep the stack of the bad access): malloc-heavy parsers run
# several times faster under ASan.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:malloc_context_size=0:quarantine_size_mb=32
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
printf '%-8s %12s %9s %10s %9s\n' target executions seconds 'exec/s' findings
total_findings=0
for t in "${targets[@]}"; do
  prepare "$t"
  maxlen=4096
  [ "$t" = tz ] && maxlen=65536
  log="$out/$t/log"
  start=$(date +%s.%N)
  set +e
  "$build/tests/fuzz/fuzz_$t" "${limit[@]}" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/$t/" "$out/$t/corpus" "$out/$t/seeds" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  findings=$(find "$out/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  ((rc == 0)) || ((findings > 0)) || findings="rc=$rc"
  printf '%-8s %12s %9.0f %10.0f %9s\n' "$t" "${runs:-?}" "$secs" "$(echo "${runs:-0} / $secs" | bc)" "$findings"
  [ "$findings" = 0 ] || total_findings=1
done
((total_findings == 0)) || { echo "findings kept in $out/TARGET/ (see its log)"; exit 1; }
