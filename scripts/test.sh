#!/usr/bin/env bash
# Installs, builds and runs every test:
#   1. the Release build (gcc): GoogleTest suite, find_package consumer, Python interop;
#   2. the sanitizer build (clang, AddressSanitizer + UndefinedBehaviorSanitizer): the fast tests;
#   3. each libFuzzer target for FUZZ_SECONDS seconds (default 15) from its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"
scripts/sanitize.sh
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
