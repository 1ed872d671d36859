#!/usr/bin/env bash
# Runs every libFuzzer target (built by scripts/sanitize.sh in build-sanitize/fuzz/), or the
# TARGETs named, from its seed corpus in fuzz/corpus/<target>/ for SECONDS seconds each
# (default 60): scripts/fuzz.sh [SECONDS [TARGET...]]. With FUZZ_RUNS=N set, each target runs N
# inputs from the fixed seed 1 instead: the same inputs on every run, so the test command
# (scripts/test.sh) cannot turn red by chance on a finding nobody has seen yet. New inputs go to a
# scratch folder, not the repository. A crash, leak, timeout or non-posenc exception stops with
# the reproducer in build-sanitize/fuzz/findings/; make it a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls fuzz/corpus))
findings=build-sanitize/fuzz/findings
mkdir -p "$findings"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizer/lsan.supp}"
# allocator_may_return_null and a high malloc limit: LibTorch's readers request what a corrupt
# file's headers claim before they find the file too short. posenc checks the framing of
# pickles first (src/interop/pickle_framing.h); an impossible request elsewhere fails and ends in
# a clear error, as in a normal process. The RSS limit still catches memory really used.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:allocator_may_return_null=1}"
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  [ -d "$corpus" ] || { echo "fuzz: no target '$target'; targets: $(ls fuzz/corpus | xargs)" >&2; exit 1; }
  scratch=$(mktemp -d)
  if [ -n "${FUZZ_RUNS:-}" ]; then
    budget=(-runs="$FUZZ_RUNS" -seed=1)
    echo "fuzz: ${target}, ${FUZZ_RUNS} inputs from seed 1"
  else
    budget=(-max_total_time="$seconds")
    echo "fuzz: ${target} for ${seconds} s"
  fi
  build-sanitize/fuzz/"${target}_fuzzer" "$scratch" "$corpus" "${budget[@]}" \
    -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=65536 -max_len=65536 -print_final_stats=0 \
    -artifact_prefix="$findings/${target}-" 2>"$scratch.log" || {
      tail -n 60 "$scratch.log" >&2
      echo "fuzz: ${target} found a problem; the input is in $findings/" >&2
      exit 1
    }
  grep -E "^Done [0-9]+ runs" "$scratch.log" | tail -1 || true
  rm -rf "$scratch" "$scratch.log"
done
