#!/usr/bin/env bash
# Installs, builds and runs every test (GoogleTest suite and the find_package consumer check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"
