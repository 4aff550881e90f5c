#!/usr/bin/env bash
# Installs what omo needs, builds it, and runs the main job on the examples in config/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target omo
build/omo solve --network config/network.yaml --rules config/routing.yaml \
  --events config/day.jsonl --out build/allocations.jsonl
echo "allocations written to build/allocations.jsonl" >&2
