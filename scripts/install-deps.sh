#!/usr/bin/env bash
# Installs everything weft needs to build, test and run on Debian 12.
# Idempotent: packages already present are left alone, and apt-get update
# runs only when something is missing.
set -euo pipefail

pkgs=(build-essential cmake pkg-config git
      libhiredis-dev libevent-dev libyaml-dev libmsgpack-dev libssl-dev
      libjansson-dev libjemalloc-dev libcriterion-dev redis-server redis-tools
      python3-redis python3-msgpack
      clang clang-format libclang-rt-14-dev nodejs python3 yamllint chromium
      iproute2)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=300 update -q
$sudo apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}"
