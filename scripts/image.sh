#!/usr/bin/env bash
# Builds the container images of docker/Dockerfile with podman and runs `omo demo` in one, as
# its non-root user: the check that the image builds and works on a machine without a Docker
# engine or a registry.
#
#   scripts/image.sh            # base image if missing, both images, `omo demo` in the demo one
#   scripts/image.sh --no-run   # build only
#
# No registry is needed: `debian:12-slim` is made locally with debootstrap (minbase bookworm from
# the Debian mirror apt uses) unless podman has it already. Docker works the same way:
# `docker build -f docker/Dockerfile [--target demo] .`.
set -euo pipefail
cd "$(dirname "$0")/.."
run=1
[ "${1:-}" = --no-run ] && run=0

need=()
for p in podman runc debootstrap; do command -v "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "[image] installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    podman runc debootstrap >/dev/null
fi

# Without these, podman's runc cannot set the container's limits here ("error setting rlimit").
limits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

if ! podman image exists debian:12-slim; then
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
           grep -v security | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' \
                               /etc/apt/sources.list 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=build-image/rootfs
  echo "[image] debootstrap bookworm from $mirror" >&2
  rm -rf "$root" && mkdir -p build-image
  debootstrap --variant=minbase bookworm "$root" "$mirror" >build-image/debootstrap.log
  tar -C "$root" -c . | podman import - debian:12-slim >/dev/null
  rm -rf "$root"
fi

t0=$(date +%s)
common=(--format docker --pull=never "${limits[@]}" -f docker/Dockerfile)
podman build "${common[@]}" --target demo -t omo-demo .
podman build "${common[@]}" -t omo .
echo "[image] built omo and omo-demo in $(($(date +%s) - t0)) s" >&2
podman image inspect omo --format \
  'omo: user={{.Config.User}} cmd={{.Config.Cmd}} healthcheck={{.Config.Healthcheck.Test}} size={{.Size}}'

((run)) || exit 0
# The service image alone: no PostgreSQL server in it, and the example configuration checks.
podman run --rm "${limits[@]}" omo sh -c \
  '! test -e /usr/lib/postgresql/15/bin/postgres && id -u && omo help >/dev/null &&
   OMO_KAFKA_BROKERS=k:9092 OMO_KAFKA_USER=u OMO_KAFKA_PASSWORD=p OMO_PG_PASSWORD=p \
   OMO_PG_HOST=db OMO_OPS_TOKEN=o OMO_STORE_S0001_TOKEN=s1 OMO_STORE_S0002_TOKEN=s2 \
   omo config check --config /etc/omo/omo.yaml'
# The demo: its summary must say that every order was decided.
log=build-image/demo.log
podman run --rm "${limits[@]}" omo-demo omo demo --rate 0 2>&1 | tee "$log"
grep -q '^omo demo: one retail day through Kafka and PostgreSQL' "$log" &&
  grep -q '^  orders  *2000: allocated' "$log" || {
  echo "[image] omo demo did not print its summary" >&2
  exit 1
}
echo "[image] omo demo ran in the container" >&2
