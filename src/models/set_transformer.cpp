#include "posenc/models/set_transformer.h"

#include <algorithm>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "core/json_keys.h"
#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"

namespace posenc {
namespace {

// The registry spec of `spec` for positions of G x M values: encodings with G and M options
// (lff, learned_quantized) take the model's unless the spec sets them, and must agree with it.
std::string spec_for_positions(const std::string& spec, int64_t groups, int64_t values) {
  auto config = parse_encoding_spec(spec);
  const auto& definition = find_encoding(config.at("type").get<std::string>());
  const auto has = [&](const char* key) {
    return std::any_of(definition.options.begin(), definition.options.end(),
                       [&](const OptionSpec& option) { return option.key == key; });
  };
  if (!has("G") || !has("M"))
    return format_encoding_spec(config);
  for (const auto& [key, model_value] : {std::pair<const char*, int64_t>{"G", groups},
                                         std::pair<const char*, int64_t>{"M", values}}) {
    if (!config.contains(key)) {
      config[key] = model_value;
    } else {
      TORCH_CHECK(config[key].is_number_integer() && config[key].get<int64_t>() == model_value,
                  "encoding '", spec, "' reads positions of ", key, " = ", config[key].dump(),
                  " but the model's positions have G = ", groups, ", M = ", values,
                  "; drop G and M from the spec (they follow the model) or change the position "
                  "shape");
    }
  }
  return format_encoding_spec(config);
}

}  // namespace

void SetTransformerOptions::validate() const {
  TORCH_CHECK(content_dim >= 1, "set model content_dim must be >= 1, got ", content_dim);
  TORCH_CHECK(classes >= 2, "set model classes must be >= 2, got ", classes);
  TORCH_CHECK(position_groups >= 1 && position_values >= 1,
              "set model positions need G >= 1 groups of M >= 1 values, got G = ", position_groups,
              ", M = ", position_values);
  TORCH_CHECK(dim >= 1 && depth >= 1 && heads >= 1,
              "set model dim, depth and heads must be >= 1, got dim = ", dim, ", depth = ", depth,
              ", heads = ", heads);
  TORCH_CHECK(dim % heads == 0, "set model dim must be divisible by heads, got dim = ", dim,
              ", heads = ", heads);
  TORCH_CHECK(mlp_ratio > 0.0, "set model mlp_ratio must be > 0, got ", mlp_ratio);
  TORCH_CHECK(drop_path >= 0.0 && drop_path < 1.0, "set model drop_path must be in [0, 1), got ",
              drop_path);
  TORCH_CHECK(!encodings.empty(), "set model needs at least one encoding (use 'none' for none)");
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SetTransformerOptions, content_dim, classes,
                                                position_groups, position_values, dim, depth,
                                                heads, mlp_ratio, drop_path, encodings)

nlohmann::json SetTransformerOptions::to_json() const {
  return nlohmann::json(*this);
}

SetTransformerOptions SetTransformerOptions::from_json(const nlohmann::json& json) {
  auto options = read_options_json<SetTransformerOptions>(json, "set model");
  options.validate();
  return options;
}

SetTransformerImpl::SetTransformerImpl(SetTransformerOptions options)
    : options_(std::move(options)) {
  options_.validate();
  content_embed_ =
      register_module("content_embed", torch::nn::Linear(options_.content_dim, options_.dim));
  // the trained grid is meaningless for encodings of continuous positions
  const EncodingContext context{options_.dim, {1, 1, 0}, options_.heads};
  encodings_ = register_module("encodings", torch::nn::ModuleList());
  rotary_encodings_ = register_module("rotary_encodings", torch::nn::ModuleList());
  for (auto& spec : options_.encodings) {
    spec = spec_for_positions(spec, options_.position_groups, options_.position_values);
    auto encoding = make_encoding(spec, context);
    spec = format_encoding_spec(encoding->config());  // every option, as VisionTransformer
    TORCH_CHECK(encoding->kind() != EncodingKind::Conditional && encoding->accepts_positions(),
                "encoding '", spec, "' cannot encode continuous positions (",
                encoding->kind() == EncodingKind::Conditional
                    ? "it convolves over a token grid, and sets have no grid"
                : encoding->kind() == EncodingKind::Bias
                    ? "it biases attention by offsets on a token grid, and sets have no grid"
                    : "it is a table over a token grid",
                "); use lff, lff:variant=mlp, sincos2d, learned_quantized, none, or a rotary "
                "one: rope_lff, rope_axial, rope_mixed");
    if (encoding->kind() == EncodingKind::Rotary) {
      TORCH_CHECK(rotary_encodings_->is_empty(), "a model takes one rotary encoding, got two (",
                  spec, " after another): combine a rotary one with additive encodings "
                  "instead, e.g. --pe lff --pe ", encoding->type());
      TORCH_CHECK(!encoding->as<RotaryEncodingImpl>()->augments_coordinates(), "set model: ",
                  spec, " augments a token grid's coordinates (shift_coords, jitter_coords, "
                  "rescale_coords), and sets have explicit positions: augment them in the data "
                  "and leave these options at 0, 1, 1");
      for (int64_t b = 0; b < options_.depth; ++b)
        rotary_encodings_->push_back(b == 0 ? encoding.ptr() : make_encoding(spec, context).ptr());
      continue;
    }
    encodings_->push_back(encoding.ptr());
  }
  blocks_ = register_module("blocks",
                            make_transformer_blocks(options_.depth, options_.dim, options_.heads,
                                                    options_.mlp_ratio, options_.drop_path));
  norm_ = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options_.dim}).eps(1e-6)));
  head_ = register_module("head", torch::nn::Linear(options_.dim, options_.classes));
  initialise_like_timm(*content_embed_);
  for (auto& block : *blocks_)
    initialise_like_timm(*block);
  initialise_like_timm(*norm_);
  initialise_like_timm(*head_);
}

void SetTransformerImpl::check_inputs(const torch::Tensor& content, const torch::Tensor& positions,
                                      const torch::Tensor& mask) const {
  TORCH_CHECK(content.dim() == 3 && content.size(2) == options_.content_dim,
              "set model: content must be (B, K, D) with D = ", options_.content_dim, ", got ",
              content.sizes());
  TORCH_CHECK(positions.dim() == 4 && positions.size(0) == content.size(0) &&
                  positions.size(1) == content.size(1),
              "set model: positions must be (B, K, G, M) for content ", content.sizes(), ", got ",
              positions.sizes());
  TORCH_CHECK(positions.size(2) == options_.position_groups &&
                  positions.size(3) == options_.position_values,
              "set model: positions have G = ", positions.size(2), ", M = ", positions.size(3),
              " but the model reads G = ", options_.position_groups,
              ", M = ", options_.position_values);
  if (mask.defined()) {
    TORCH_CHECK(mask.dim() == 2 && mask.size(0) == content.size(0) &&
                    mask.size(1) == content.size(1) && mask.scalar_type() == torch::kBool,
                "set model: mask must be (B, K) bool, got ", mask.sizes(), " ", mask.scalar_type());
    TORCH_CHECK(mask.any(1).all().item<bool>(),
                "set model: a set has no real token (its mask is all false)");
  }
}

torch::Tensor SetTransformerImpl::forward(const torch::Tensor& content,
                                          const torch::Tensor& positions,
                                          const torch::Tensor& mask) {
  check_inputs(content, positions, mask);
  auto tokens = content_embed_->forward(content);  // (B, K, dim)
  const auto layout = TokenLayout::at_positions(positions);
  for (const auto& encoding : *encodings_)
    tokens = encoding->as<PositionalEncodingImpl>()->forward(tokens, layout);
  for (size_t b = 0; b < blocks_->size(); ++b) {
    QueryKeyRotation rotate;
    if (!rotary_encodings_->is_empty()) {
      // the angles once per block, for its queries and keys
      rotate = rotary_encodings_[b]->as<RotaryEncodingImpl>()->rotation(layout, tokens.options());
    }
    tokens = blocks_[b]->as<TransformerBlockImpl>()->forward(tokens, mask, rotate);
  }
  return head_->forward(norm_->forward(tokens));  // (B, K, classes)
}

torch::Tensor SetTransformerImpl::positional_embedding(const torch::Tensor& positions) {
  TORCH_CHECK(positions.dim() == 4, "positions must be (B, K, G, M), got ", positions.sizes());
  const auto layout = TokenLayout::at_positions(positions);
  const auto options = content_embed_->weight.options();
  auto embedding = torch::zeros({positions.size(0), positions.size(1), options_.dim}, options);
  for (const auto& encoding : *encodings_)
    embedding = embedding + encoding->as<AdditiveEncodingImpl>()->embedding(layout, options);
  return embedding;
}

bool SetTransformerImpl::positions_only_in_attention() const {
  if (rotary_encodings_->is_empty())
    return false;
  return std::all_of(encodings_->begin(), encodings_->end(), [](const auto& encoding) {
    return encoding->template as<PositionalEncodingImpl>()->type() == "none";
  });
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>>
SetTransformerImpl::weight_decay_groups() const {
  std::vector<torch::Tensor> decayed, not_decayed;
  for (const auto& item : named_parameters()) {
    const bool exempt = item.value().dim() <= 1 || item.key().rfind("encodings.", 0) == 0 ||
                        item.key().rfind("rotary_encodings.", 0) == 0;
    (exempt ? not_decayed : decayed).push_back(item.value());
  }
  return {decayed, not_decayed};
}

}  // namespace posenc
