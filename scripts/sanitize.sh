#!/usr/bin/env bash
# Builds posenc, its tests and the fuzz targets with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer in build-sanitize/, then runs the fast tests there (kernels,
# encodings, models, parsers, checkpoints, interop): any memory error, leak or undefined
# behaviour fails them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
if ! CXX=clang++ cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPOSENC_SANITIZERS=ON -DPOSENC_FUZZERS=ON -DPOSENC_BUILD_APPS=OFF >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
cmake --build build-sanitize --parallel "$(nproc)"
# full unwinding on malloc, so that leak suppressions can match frames inside LibTorch
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizer/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Whole training runs and multi-process tests are left to the normal build: they take minutes
# under the sanitizers and exercise the same parsers and kernels.
build-sanitize/tests/posenc_tests --gtest_brief=1 \
  --gtest_filter='-Trainer.*:DataParallelTraining.*'
