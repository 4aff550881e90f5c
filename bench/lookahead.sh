#!/usr/bin/env bash
# Look-ahead sourcing against the myopic per-order optimum, and both against a clairvoyant bound.
#
#   bench/lookahead.sh            SEEDS=10 by default; GEN="..." overrides gen's size options
#
# Builds Release into build-bench. For each regime (tight: stores hold 1-3 units of most SKUs;
# ample: stores hold twice a week of their city's demand) and each seed, `gen --demand` grows a
# demand model (city populations, Zipf SKU popularity, a daily rate per SKU and city), writes it
# as the forecast, and draws a week of orders from it, warehouses receiving stock every
# midnight. `omo solve` decides the week with routing.yaml (myopic) and routing_lookahead.yaml
# (the same rules and a lookahead block), and `labound` reads both outputs and computes the
# clairvoyant bound (an LP relaxation over the whole week known in advance).
#
# Prints per regime the means of total objective, shipping cost, split orders and backordered
# units, and paired differences look-ahead - myopic over the seeds with a 95% interval (t
# distribution): objective in %, the share of the myopic-to-bound gap closed, and the solve time
# ratio look-ahead/myopic. Targets: tight: objective >= 1.5% below myopic, no more backordered
# units, >= 40% of the gap closed; ample: <= 0.1% above myopic; time ratio <= 1.5.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${SEEDS:-10}
gen_opts=${GEN:-}
build=build-bench
out=bench/out/lookahead

scripts/deps.sh
echo "[bench] building Release into $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target omo gen labound >/dev/null

mkdir -p "$out"
results="$out/results.txt"
: >"$results"
now() { echo "${EPOCHREALTIME/,/.}"; }
for regime in tight ample; do
  for seed in $(seq 1 "$seeds"); do
    dir="$out/$regime-$seed"
    # shellcheck disable=SC2086
    "$build/gen" --demand "$regime" --seed "$seed" --out-dir "$dir" $gen_opts 2>/dev/null
    t0=$(now)
    "$build/omo" solve --network "$dir/network.yaml" --rules "$dir/routing.yaml" \
      --events "$dir/events.jsonl" --out "$dir/myopic.jsonl" 2>/dev/null
    t1=$(now)
    "$build/omo" solve --network "$dir/network.yaml" --rules "$dir/routing_lookahead.yaml" \
      --events "$dir/events.jsonl" --out "$dir/lookahead.jsonl" 2>/dev/null
    t2=$(now)
    figures=$("$build/labound" "$dir" "$dir/myopic.jsonl" "$dir/lookahead.jsonl")
    tm=$(echo "$t1 - $t0" | bc -l)
    tl=$(echo "$t2 - $t1" | bc -l)
    echo "$regime $seed $figures $tm $tl" | tee -a "$results" >&2
  done
done
"$build/labound" --lp-time "$out/tight-1" 3

# Columns: regime seed | myopic: objective cost splits backordered | look-ahead: the same |
# bound bound_backordered | seconds myopic, look-ahead
awk '
function tq(df) { # 97.5% quantile of Student t
  split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042", t, " ")
  return df <= 30 ? t[df] : 1.96
}
function ci(name, r, sum, sq, n, unit,   m, sd) {
  m = sum / n; sd = n > 1 ? sqrt((sq - n * m * m) / (n - 1)) : 0
  printf "  %-38s %+9.3f%s  95%% interval [%+.3f, %+.3f]\n", name, m, unit, m - tq(n - 1) * sd / sqrt(n), m + tq(n - 1) * sd / sqrt(n)
  lo[r, name] = m - tq(n - 1) * sd / sqrt(n); hi[r, name] = m + tq(n - 1) * sd / sqrt(n); mean[r, name] = m
}
{
  r = $1; n[r]++
  for (i = 3; i <= 14; i++) s[r, i] += $i
  d = 100 * ($7 - $3) / $3; dsum[r] += d; dsq[r] += d * d
  c = 100 * ($8 - $4) / $4; csum[r] += c; csq[r] += c * c
  b = $10 - $6; bsum[r] += b; bsq[r] += b * b
  gap = $3 - $11; g = gap > 0 ? 100 * ($3 - $7) / gap : 0; gsum[r] += g; gsq[r] += g * g
  q = $14 / $13; qsum[r] += q; qsq[r] += q * q
}
END {
  ok = 1
  for (k = 1; k <= 2; k++) {
    r = k == 1 ? "tight" : "ample"
    if (!n[r]) continue
    m = n[r]
    printf "\n%s stock, %d seeds (means)     objective     shipping   splits  backordered\n", r, m
    printf "  myopic                             %12.2f %12.2f %8.1f %12.1f\n", s[r,3]/m, s[r,4]/m, s[r,5]/m, s[r,6]/m
    printf "  look-ahead                         %12.2f %12.2f %8.1f %12.1f\n", s[r,7]/m, s[r,8]/m, s[r,9]/m, s[r,10]/m
    printf "  clairvoyant bound (LP)             %12.2f %38s\n", s[r,11]/m, ""
    print  "  paired, look-ahead - myopic:"
    ci("objective", r, dsum[r], dsq[r], m, " %")
    ci("shipping cost", r, csum[r], csq[r], m, " %")
    ci("backordered units", r, bsum[r], bsq[r], m, "")
    ci("myopic-to-bound gap closed", r, gsum[r], gsq[r], m, " %")
    ci("solve time ratio look-ahead/myopic", r, qsum[r], qsq[r], m, "")
    if (r == "tight") {
      t1 = mean[r, "objective"] <= -1.5; t2 = mean[r, "backordered units"] <= 0; t3 = mean[r, "myopic-to-bound gap closed"] >= 40
      printf "  targets: objective <= -1.5%% %s; backordered not more %s; gap closed >= 40%% %s\n", t1 ? "met" : "MISSED", t2 ? "met" : "MISSED", t3 ? "met" : "MISSED"
    } else {
      t1 = mean[r, "objective"] <= 0.1; t2 = 1; t3 = 1
      printf "  targets: objective <= +0.1%% %s\n", t1 ? "met" : "MISSED"
    }
    t4 = mean[r, "solve time ratio look-ahead/myopic"] <= 1.5
    printf "  target: solve time ratio <= 1.5 %s\n", t4 ? "met" : "MISSED"
    ok = ok && t1 && t2 && t3 && t4
  }
  exit ok ? 0 : 1
}' "$results"
