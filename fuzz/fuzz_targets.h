#pragma once
// One function per parser of external input, fed arbitrary bytes: by the libFuzzer targets
// (fuzzer_main.cpp), and by tests/fuzz_regression_test.cpp on the seed corpus and on every
// input that once crashed (fuzz/regressions/<target>/).
//
// A parser may reject its input only with a c10::Error, posenc's clear error; these functions
// swallow those and let anything else escape: another exception, a crash, a leak or undefined
// behaviour is a finding.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace posenc::fuzz {

using FuzzTarget = void (*)(const uint8_t* data, size_t size);

struct NamedFuzzTarget {
  std::string name;  // also the folder of its corpus: fuzz/corpus/<name>/
  FuzzTarget run;
};

// IDX files, raw or gzip-compressed (zlib reads both).
void idx_file(const uint8_t* data, size_t size);
// Image files as the image-folder loader reads them, in gray and in colour.
void image_file(const uint8_t* data, size_t size);
// JSON run configurations (--config, and the configuration inside checkpoints).
void run_config(const uint8_t* data, size_t size);
// Encoding spec strings, then the encoding built for a small grid and run once.
void encoding_spec(const uint8_t* data, size_t size);
// posenc checkpoints: the stored configuration, and the tensors loaded into a small model.
void checkpoint(const uint8_t* data, size_t size);
// torch.save files: posenc's reader, then the import as each model family.
void torch_save(const uint8_t* data, size_t size);
// Token sets in JSON Lines (--train-jsonl, --test-jsonl), then a small SetTransformer run on them.
void token_sets_jsonl(const uint8_t* data, size_t size);

const std::vector<NamedFuzzTarget>& fuzz_targets();

}  // namespace posenc::fuzz
