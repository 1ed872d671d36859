#pragma once
// What a state dict's tensors cannot tell about a model, in timm's own file for it: the
// config.json of timm's Hugging Face Hub layout (written by timm.models.save_for_hf and
// push_to_hf_hub beside pytorch_model.bin / model.safetensors). posenc import reads it, posenc
// export writes it beside the state dict, so a model keeps its attention heads, input size,
// normalisation and class names through an export and an import.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace posenc {

// The keys of timm's config.json that posenc uses; every field is empty or 0 when the file does
// not give it.
struct TimmModelConfig {
  std::string architecture;              // "architecture", e.g. "deit_tiny_patch16_224"
  int64_t classes = 0;                   // "num_classes" (root, else pretrained_cfg)
  int64_t heads = 0;                     // "model_args": {"num_heads"}
  int64_t channels = 0;                  // pretrained_cfg "input_size": [C, H, W]
  int64_t image_height = 0;              // (model_args "img_size" when it is given)
  int64_t image_width = 0;
  std::vector<double> mean;              // pretrained_cfg "mean", one per channel
  std::vector<double> std;               // pretrained_cfg "std"
  std::vector<std::string> class_names;  // "label_names": a list, or {"index": name, ...}
  std::string global_pool;               // "global_pool" (root, else model_args)
  // posenc's own key, which timm ignores: {"posenc": {"pe_after": [...]}}, the blocks after
  // which a CPVT model's PEGs (pos_block.0, .1, ...) run
  std::vector<int64_t> conditional_after_blocks;
};

// Parses timm's layout, the current one ({"architecture", ..., "pretrained_cfg": {...}}) and the
// older single dictionary. Throws naming `origin` (the file) and the key for a value of the
// wrong type or range.
TimmModelConfig parse_timm_model_config(const nlohmann::json& json, const std::string& origin);
// Throws for a missing file or one that is not JSON, naming the file.
TimmModelConfig read_timm_model_config(const std::string& path);

// The config.json timm writes for such a model; `model_args` holds the arguments that rebuild it
// (timm.create_model(architecture, **model_args)) and is written as given.
nlohmann::json timm_model_config_json(const TimmModelConfig& config,
                                      const nlohmann::json& model_args);

// Where `posenc export` puts the config beside a state dict: model.pth -> model.config.json.
std::string timm_model_config_path_beside(const std::string& state_dict_path);

}  // namespace posenc
