#!/usr/bin/env bash
# Configures and builds weft into build/ (or $1) with warnings as errors.
# Extra arguments after the directory go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DWEFT_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
