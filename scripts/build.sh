#!/usr/bin/env bash
# Installs the dependencies (scripts/install-deps.sh: Debian packages and .venv with LibTorch),
# then configures and builds posenc (Release) in build/: everything, or only the TARGETs named
# (scripts/build.sh posenc_cli builds the command line alone, for the main job).
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
targets=()
for target in "$@"; do targets+=(--target "$target"); done
# Each LibTorch translation unit needs ~1 GB and ~20 s: one job per core.
cmake --build build --parallel "$(nproc)" "${targets[@]}"
