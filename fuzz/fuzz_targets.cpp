#include "fuzz_targets.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "posenc/data/idx_file.h"
#include "posenc/data/image_folder.h"
#include "posenc/data/token_sets_jsonl.h"
#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"
#include "posenc/interop/pytorch_models.h"
#include "posenc/interop/torch_save_files.h"
#include "posenc/models/set_transformer.h"
#include "posenc/models/vision_transformer.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/run_config.h"

namespace posenc::fuzz {
namespace {

// The input as a file of this process (posenc's readers take paths), in /dev/shm if possible.
std::string input_file(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = folder + "/posenc-fuzz-" + std::to_string(getpid()) + suffix;
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr)
    throw std::runtime_error("fuzz: cannot write " + path);
  const bool written = size == 0 || std::fwrite(data, 1, size, file) == size;
  std::fclose(file);
  if (!written)
    throw std::runtime_error("fuzz: cannot write " + path);
  return path;
}

template <typename Parse>
void rejecting_with_clear_errors(Parse&& parse) {
  try {
    parse();
  } catch (const c10::Error&) {
  }
}

}  // namespace

void idx_file(const uint8_t* data, size_t size) {
  const auto path = input_file(data, size, ".idx");
  rejecting_with_clear_errors([&] { read_idx_file(path); });
}

void image_file(const uint8_t* data, size_t size) {
  const auto path = input_file(data, size, ".png");
  for (const int64_t channels : {1, 3})
    rejecting_with_clear_errors([&] { read_image_file(path, channels); });
}

void run_config(const uint8_t* data, size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    return;  // not JSON: `posenc train --config` says so before posenc parses anything
  rejecting_with_clear_errors([&] {
    const auto config = RunConfig::from_json(json);
    config.model.validate();
    config.training.validate();
  });
}

void encoding_spec(const uint8_t* data, size_t size) {
  const std::string spec(reinterpret_cast<const char*>(data), size);
  rejecting_with_clear_errors([&] {
    const auto config = parse_encoding_spec(spec);
    // Larger sizes allocate what they ask for (lff:F=1000000000 is 4 GB): not a parser's fault.
    for (const auto& item : config.items()) {
      if (item.value().is_number() && std::abs(item.value().get<double>()) > 4096.0)
        return;
    }
    const TokenGrid grid{4, 5, 1};
    auto encoding = make_encoding(config, {16, grid});
    torch::NoGradGuard no_grad;
    encoding->forward(torch::zeros({1, grid.total_tokens(), 16}), grid);
  });
}

void checkpoint(const uint8_t* data, size_t size) {
  const CheckpointBytes bytes{"fuzz.pt", std::string(reinterpret_cast<const char*>(data), size)};
  rejecting_with_clear_errors([&] { RunConfig::from_json(read_checkpoint_config(bytes)); });
  // built once: loading overwrites its tensors or changes nothing
  static VisionTransformer model = [] {
    auto options = VisionTransformerOptions::preset("nano");
    options.dim = 8;
    options.depth = 1;
    options.heads = 2;
    options.image_height = options.image_width = 4;
    options.patch_size = 2;
    options.classes = 3;
    options.encodings = {"learned1d"};
    options.conditional_after_blocks = {};
    return VisionTransformer(options);
  }();
  rejecting_with_clear_errors([&] { load_model_tensors(bytes, *model); });
}

void torch_save(const uint8_t* data, size_t size) {
  const auto path = input_file(data, size, ".pth");
  rejecting_with_clear_errors([&] {
    const auto state = read_torch_state_dict(path);
    for (const auto& family : pytorch_model_families()) {
      ImportOptions options;
      options.family = family;
      options.heads = 1;
      options.image_height = options.image_width = 4;
      rejecting_with_clear_errors([&] { import_pytorch_model(state, options); });
    }
  });
}

void token_sets_jsonl(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  rejecting_with_clear_errors([&] {
    const auto sets = parse_token_sets_jsonl(text, "fuzz.jsonl");
    // Larger shapes allocate what they ask for: not a parser's fault.
    if (sets.content_dim() > 64 || sets.groups() * sets.values() > 64 || sets.classes > 4096)
      return;
    SetTransformerOptions options;
    options.content_dim = sets.content_dim();
    options.classes = sets.classes;
    options.position_groups = sets.groups();
    options.position_values = sets.values();
    options.dim = 4 * sets.groups() * sets.values();
    options.depth = 1;
    options.heads = 1;
    options.encodings = {"lff:F=4,H=4"};
    SetTransformer model(options);
    torch::NoGradGuard no_grad;
    const auto first = sets.select(torch::arange(std::min<int64_t>(sets.size(), 4)));
    model->forward(first.content, first.positions, first.mask);
  });
}

const std::vector<NamedFuzzTarget>& fuzz_targets() {
  static const std::vector<NamedFuzzTarget> targets{
      {"idx_file", idx_file},           {"image_file", image_file},
      {"run_config", run_config},       {"encoding_spec", encoding_spec},
      {"checkpoint", checkpoint},       {"torch_save", torch_save},
      {"token_sets_jsonl", token_sets_jsonl}};
  return targets;
}

}  // namespace posenc::fuzz
