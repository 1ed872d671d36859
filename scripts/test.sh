#!/usr/bin/env bash
# Installs, builds and runs every test:
#   1. the Release build (gcc): GoogleTest suite, find_package consumer, Python interop;
#   2. the sanitizer build (clang, AddressSanitizer + UndefinedBehaviorSanitizer): the fast tests;
#   3. each libFuzzer target on FUZZ_RUNS inputs (default 2000) from its seed corpus and seed 1
#      (scripts/fuzz.sh SECONDS fuzzes for longer, with fresh random inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"
scripts/sanitize.sh
FUZZ_RUNS="${FUZZ_RUNS:-2000}" scripts/fuzz.sh
