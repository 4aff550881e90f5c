#!/usr/bin/env bash
# Builds the container images of docker/Dockerfile with podman, runs `omo demo` in one, as its
# non-root user, and `omo run` in the other (against the demo container's Kafka and PostgreSQL):
# the check that the images build and work on a machine without a Docker engine or a registry.
#
#   scripts/image.sh            # base image if missing, both images, `omo demo`, `omo run`
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

# The service image for real: `omo run` in it, against the demo container's Kafka cluster and
# PostgreSQL (a database of its own), in the demo's network namespace. Its HEALTHCHECK must pass,
# /readyz answer 200, and SIGTERM drain to exit 0.
svcdir=$PWD/build-image/service
rm -rf "$svcdir" && mkdir -p "$svcdir"
cleanup() {
  for c in omo-image-svc omo-image-backing; do podman rm -f -i -t 5 "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
cleanup
podman run -d --name omo-image-backing "${limits[@]}" omo-demo \
  omo demo --keep --rate 0 --port 18080 >/dev/null
# (logs read whole, then searched: a grep that stops early would fail the pipe under pipefail)
logs=""
for _ in $(seq 120); do
  logs=$(podman logs omo-image-backing 2>&1 || true)
  grep -q 'the service is up' <<<"$logs" && break
  sleep 1
done
line=$(grep -m1 'Kafka mock cluster at' <<<"$logs") ||
  { echo "$logs" | tail -n 20 >&2; echo "[image] the demo container did not start" >&2; exit 1; }
brokers=$(sed 's/.*Kafka mock cluster at \([^,]*\(,[^ ,]*\)*\), PostgreSQL at .*/\1/' <<<"$line")
dsn=$(sed 's/.*PostgreSQL at \(\S*\).*/\1/' <<<"$line")
podman exec omo-image-backing psql -q "$dsn" -c 'CREATE DATABASE omo_image' >/dev/null
cat >"$svcdir/omo.yaml" <<YAML
kafka: {brokers: "$brokers", group: omo-image}
postgres: {dsn: "${dsn%/*}/omo_image"}
network: /etc/omo/network.yaml
routing: /etc/omo/routing.yaml
http:
  listen: 0.0.0.0:8080
  tokens: [{token: "\${OMO_OPS_TOKEN}", role: ops}]
YAML
chmod -R a+rX "$svcdir"
inns=(--network container:omo-image-backing -v "$svcdir:/etc/omo-image:ro" -e OMO_OPS_TOKEN=t0k)
podman run --rm "${limits[@]}" "${inns[@]}" omo omo db migrate --config /etc/omo-image/omo.yaml
podman run -d --name omo-image-svc "${limits[@]}" "${inns[@]}" omo \
  omo run --config /etc/omo-image/omo.yaml >/dev/null
healthy=0
for _ in $(seq 60); do
  if podman healthcheck run omo-image-svc >/dev/null 2>&1 &&
     podman exec omo-image-svc curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1; then
    healthy=1 && break
  fi
  sleep 1
done
((healthy)) || { podman logs omo-image-svc >&2; echo "[image] omo run not healthy" >&2; exit 1; }
metrics=$(podman exec omo-image-svc curl -fsS http://127.0.0.1:8080/metrics)
grep -m1 '^omo_consumer_lag' <<<"$metrics"
podman stop -t 30 omo-image-svc >/dev/null
rc=$(podman inspect omo-image-svc --format '{{.State.ExitCode}}')
logs=$(podman logs omo-image-svc 2>&1) && tail -n 3 <<<"$logs"
[ "$rc" = 0 ] || { echo "[image] omo run exited $rc on SIGTERM" >&2; exit 1; }
echo "[image] the service image ran omo run: healthy, ready, drained on SIGTERM" >&2
