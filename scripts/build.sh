#!/usr/bin/env bash
# Installs the dependencies, then configures and builds posenc (Release) in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
if ! cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
# Each LibTorch translation unit needs ~1 GB and ~20 s: one job per core.
cmake --build build --parallel "$(nproc)"
