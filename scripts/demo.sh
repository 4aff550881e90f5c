#!/usr/bin/env bash
# Installs what omo needs, builds it, and runs `omo demo`: the service on an in-process Kafka
# cluster and a private PostgreSQL, streaming the example retail day of config/.
# Arguments go to `omo demo` (e.g. --keep to leave it running).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target omo
exec build/omo demo "$@"
