#!/usr/bin/env bash
# Installs the Debian 12 packages omo builds, tests and runs with. Idempotent: installs only
# what is missing, and touches apt's lists only when something is.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang-format
      python3 python3-jsonschema python3-yaml python3-kafka
      libyaml-dev libjansson-dev libcriterion-dev librdkafka-dev libpq-dev
      libmicrohttpd-dev libglpk-dev postgresql tzdata
      chromium fonts-dejavu-core)
missing=()
# The browser test drives Chromium from Node.js: Debian's, unless the machine has one already.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "[deps] installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
