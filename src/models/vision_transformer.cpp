#include "posenc/models/vision_transformer.h"

#include <algorithm>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "core/json_keys.h"
#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"

namespace posenc {

TokenGrid VisionTransformerOptions::trained_grid() const {
  return {image_height / patch_size, image_width / patch_size, prefix_tokens()};
}

void VisionTransformerOptions::validate() const {
  TORCH_CHECK(image_channels >= 1, "model image_channels must be >= 1, got ", image_channels);
  TORCH_CHECK(classes >= 2, "model classes must be >= 2, got ", classes);
  TORCH_CHECK(patch_size >= 1, "model patch_size must be >= 1, got ", patch_size);
  TORCH_CHECK(image_height >= patch_size && image_width >= patch_size,
              "model image size must be at least one patch, got ", image_height, "x", image_width,
              " with patch size ", patch_size);
  TORCH_CHECK(dim >= 1 && depth >= 1 && heads >= 1,
              "model dim, depth and heads must be >= 1, got dim = ", dim, ", depth = ", depth,
              ", heads = ", heads);
  TORCH_CHECK(dim % heads == 0, "model dim must be divisible by heads, got dim = ", dim,
              ", heads = ", heads);
  TORCH_CHECK(mlp_ratio > 0.0, "model mlp_ratio must be > 0, got ", mlp_ratio);
  TORCH_CHECK(drop_path >= 0.0 && drop_path < 1.0, "model drop_path must be in [0, 1), got ",
              drop_path);
  TORCH_CHECK(layer_scale >= 0.0 && std::isfinite(layer_scale),
              "model layer_scale must be 0 (none) or a positive initial gamma, got ", layer_scale);
  TORCH_CHECK(head == "token" || head == "gap" || head == "gap_with_token",
              "model head must be 'token' (class token), 'gap' (global average pooling, no class "
              "token) or 'gap_with_token' (global average pooling beside a class token), got '",
              head, "'");
  TORCH_CHECK(!fc_norm || head != "token", "model fc_norm puts the final norm after the global "
              "average pooling: it needs the gap or gap_with_token head, not 'token'");
  parse_qkv_bias(qkv_bias);
  for (int64_t block : conditional_after_blocks) {
    TORCH_CHECK(block >= -1 && block < depth, "conditional encoding position ", block,
                " is outside the model: use -1 (before the first block) to ", depth - 1,
                " (after the last of ", depth, " blocks)");
  }
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VisionTransformerOptions, image_channels, classes,
                                                image_height, image_width, patch_size, dim, depth,
                                                heads, mlp_ratio, drop_path, layer_scale, head,
                                                fc_norm, qkv_bias, encodings,
                                                conditional_after_blocks, pad_to_patch)

nlohmann::json VisionTransformerOptions::to_json() const {
  return nlohmann::json(*this);
}

VisionTransformerOptions VisionTransformerOptions::from_json(const nlohmann::json& json) {
  auto options = read_options_json<VisionTransformerOptions>(json, "model");
  options.validate();
  return options;
}

VisionTransformerOptions VisionTransformerOptions::preset(const std::string& name) {
  VisionTransformerOptions options;
  if (name == "tiny" || name == "small") {
    // DeiT-Ti / CPVT-Ti and DeiT-S / CPVT-S at 224 px with 16 px patches.
    options.image_height = options.image_width = 224;
    options.patch_size = 16;
    options.image_channels = 3;
    options.classes = 1000;
    options.depth = 12;
    options.dim = name == "tiny" ? 192 : 384;
    options.heads = name == "tiny" ? 3 : 6;
  } else if (name == "micro" || name == "nano") {
    // CPU-sized models for 28 x 28 images, patch 4: a 7 x 7 token grid.
    options.dim = name == "micro" ? 96 : 64;
    options.depth = name == "micro" ? 6 : 4;
    options.heads = name == "micro" ? 3 : 2;
  } else {
    TORCH_CHECK(false, "unknown model preset '", name, "'; presets: tiny, small, micro, nano");
  }
  return options;
}

VisionTransformerImpl::VisionTransformerImpl(VisionTransformerOptions options)
    : options_(std::move(options)) {
  options_.validate();
  patch_embed_ =
      register_module("patch_embed", PatchEmbedding(options_.image_channels, options_.dim,
                                                    options_.patch_size, options_.pad_to_patch));
  if (options_.has_class_token()) {
    cls_token_ = register_parameter("cls_token", torch::randn({1, 1, options_.dim}) * 0.02);
  }
  const EncodingContext context{options_.dim, options_.trained_grid(), options_.heads};
  additive_encodings_ = register_module("additive_encodings", torch::nn::ModuleList());
  conditional_encodings_ = register_module("conditional_encodings", torch::nn::ModuleList());
  rotary_encodings_ = register_module("rotary_encodings", torch::nn::ModuleList());
  bias_encodings_ = register_module("bias_encodings", torch::nn::ModuleList());
  for (auto& spec : options_.encodings) {
    auto encoding = make_encoding(spec, context);
    // every option with its value, so that options() (and the checkpoints that store them)
    // rebuild this encoding even after a default changes
    spec = format_encoding_spec(encoding->config());
    if (encoding->kind() == EncodingKind::Additive) {
      additive_encodings_->push_back(encoding.ptr());
      continue;
    }
    if (encoding->kind() == EncodingKind::Rotary) {
      TORCH_CHECK(rotary_encodings_->is_empty(), "a model takes one rotary encoding, got two (",
                  spec, " after another): combine a rotary one with additive or conditional "
                  "encodings instead, e.g. --pe learned1d --pe ", encoding->type());
      for (int64_t b = 0; b < options_.depth; ++b)
        rotary_encodings_->push_back(b == 0 ? encoding.ptr() : make_encoding(spec, context).ptr());
      continue;
    }
    if (encoding->kind() == EncodingKind::Bias) {
      TORCH_CHECK(bias_encodings_->is_empty(), "a model takes one attention-bias encoding, got "
                  "two (", spec, " after another): combine it with additive, conditional or "
                  "rotary encodings instead, e.g. --pe rope_axial --pe ", encoding->type());
      bias_shared_ = encoding->as<AttentionBiasEncodingImpl>()->shared_across_blocks();
      const int64_t modules = bias_shared_ ? 1 : options_.depth;
      for (int64_t b = 0; b < modules; ++b)
        bias_encodings_->push_back(b == 0 ? encoding.ptr() : make_encoding(spec, context).ptr());
      continue;
    }
    TORCH_CHECK(!options_.conditional_after_blocks.empty(), "conditional encoding '", spec,
                "' needs at least one position in conditional_after_blocks");
    // One independent module per position, as CPVT's PEG at blocks 0-5.
    for (size_t i = 0; i < options_.conditional_after_blocks.size(); ++i) {
      conditional_encodings_->push_back(i == 0 ? encoding.ptr()
                                               : make_encoding(spec, context).ptr());
      conditional_slots_.push_back(options_.conditional_after_blocks[i]);
    }
  }
  blocks_ = register_module("blocks",
                            make_transformer_blocks(options_.depth, options_.dim, options_.heads,
                                                    options_.mlp_ratio, options_.drop_path,
                                                    options_.layer_scale,
                                                    parse_qkv_bias(options_.qkv_bias)));
  const auto norm_options = torch::nn::LayerNormOptions({options_.dim}).eps(1e-6);
  norm_ = register_module(options_.fc_norm ? "fc_norm" : "norm",
                          torch::nn::LayerNorm(norm_options));
  head_ = register_module("head", torch::nn::Linear(options_.dim, options_.classes));
  for (auto& block : *blocks_)
    initialise_like_timm(*block);
  initialise_like_timm(*norm_);
  initialise_like_timm(*head_);
}

std::pair<torch::Tensor, TokenGrid> VisionTransformerImpl::embed(const torch::Tensor& images) {
  auto [tokens, grid] = patch_embed_->forward(images);  // (B, H*W, dim)
  if (cls_token_.defined()) {
    tokens = torch::cat({cls_token_.expand({tokens.size(0), -1, -1}), tokens}, 1);
  }
  grid.prefix_tokens = options_.prefix_tokens();
  for (const auto& encoding : *additive_encodings_) {
    tokens = encoding->as<PositionalEncodingImpl>()->forward(tokens, grid);
  }
  return {tokens, grid};
}

std::pair<torch::Tensor, TokenLayout> VisionTransformerImpl::embed(
    const std::vector<torch::Tensor>& images) {
  TORCH_CHECK(!images.empty(), "a batch of images of their own sizes needs at least one image");
  // the images of each size, in order of first appearance, embedded by one convolution
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::vector<int64_t>>> sizes;
  for (size_t b = 0; b < images.size(); ++b) {
    const auto& image = images[b];
    TORCH_CHECK(image.defined() && image.dim() == 3 && image.size(0) == options_.image_channels,
                "image ", b, " of the batch must be (", options_.image_channels, ", H, W), got ",
                image.defined() ? c10::str(image.sizes()) : std::string("an undefined tensor"));
    TORCH_CHECK(image.size(1) >= options_.patch_size && image.size(2) >= options_.patch_size,
                "image ", b, " of the batch is ", image.size(1), "x", image.size(2),
                ", smaller than one ", options_.patch_size, "x", options_.patch_size,
                " patch: it would have no token of its own; leave it out or resize it");
    const std::pair<int64_t, int64_t> size{image.size(1), image.size(2)};
    auto group = std::find_if(sizes.begin(), sizes.end(),
                              [&](const auto& entry) { return entry.first == size; });
    if (group == sizes.end())
      group = sizes.insert(sizes.end(), {size, {}});
    group->second.push_back(static_cast<int64_t>(b));
  }
  std::vector<TokenGrid> grids(images.size());
  std::vector<std::pair<torch::Tensor, torch::Tensor>> embedded;  // (batch indices, tokens)
  for (const auto& [size, members] : sizes) {
    std::vector<torch::Tensor> group;
    for (const int64_t b : members)
      group.push_back(images[b]);
    auto [tokens, grid] = patch_embed_->forward(torch::stack(group));  // (n, H_g * W_g, dim)
    if (cls_token_.defined())
      tokens = torch::cat({cls_token_.expand({tokens.size(0), -1, -1}), tokens}, 1);
    grid.prefix_tokens = options_.prefix_tokens();
    for (const int64_t b : members)
      grids[b] = grid;
    embedded.emplace_back(torch::tensor(members, torch::TensorOptions(torch::kLong)
                                                     .device(tokens.device())),
                          tokens);
  }
  const auto layout = TokenLayout::of_grids(grids);
  const int64_t count = layout.total_tokens();
  // (B, N, dim): each image's tokens, then zeros as its padding
  auto tokens = torch::zeros({static_cast<int64_t>(images.size()), count, options_.dim},
                             embedded[0].second.options());
  for (const auto& [index, group] : embedded)
    tokens = tokens.index_copy(
        0, index, torch::constant_pad_nd(group, {0, 0, 0, count - group.size(1)}, 0.0));
  for (const auto& encoding : *additive_encodings_)
    tokens = encoding->as<PositionalEncodingImpl>()->forward(tokens, layout);
  return {tokens, layout};
}

torch::Tensor VisionTransformerImpl::apply_conditional(const torch::Tensor& tokens,
                                                       const TokenLayout& layout,
                                                       int64_t after_block) {
  torch::Tensor x = tokens;
  for (size_t i = 0; i < conditional_slots_.size(); ++i) {
    if (conditional_slots_[i] == after_block) {
      x = conditional_encodings_[i]->as<PositionalEncodingImpl>()->forward(x, layout);
    }
  }
  return x;
}

torch::Tensor VisionTransformerImpl::run_block(size_t block, const torch::Tensor& tokens,
                                               const TokenLayout& layout,
                                               const CoordinateAugmentation& augmentation,
                                               const torch::Tensor& key_mask) {
  QueryKeyRotation rotate;
  if (!rotary_encodings_->is_empty()) {
    // the angles once per block, for its queries and keys
    rotate = rotary_encodings_[block]->as<RotaryEncodingImpl>()->rotation(
        layout, tokens.options(), augmentation);
  }
  torch::Tensor logit_bias;  // (heads, N, N), or (B, heads, N, N) on a batch of grids
  if (!bias_encodings_->is_empty()) {
    logit_bias = bias_encodings_[bias_shared_ ? 0 : block]
                     ->as<AttentionBiasEncodingImpl>()
                     ->attention_bias(layout, tokens.options());
  }
  return blocks_[block]->as<TransformerBlockImpl>()->forward(tokens, key_mask, rotate,
                                                             logit_bias);
}

torch::Tensor VisionTransformerImpl::run_blocks(torch::Tensor tokens, const TokenLayout& layout) {
  // DINOv3's coordinate augmentation, if configured: one draw per training step for every block
  const auto augmentation =
      rotary_encodings_->is_empty()
          ? CoordinateAugmentation{}
          : rotary_encodings_[0]->as<RotaryEncodingImpl>()->draw_coordinate_augmentation();
  // padding tokens of a batch of grids get no attention
  const auto key_mask =
      layout.is_grid_batch() ? layout.token_mask().to(tokens.device()) : torch::Tensor();
  tokens = apply_conditional(tokens, layout, -1);
  for (size_t b = 0; b < blocks_->size(); ++b) {
    tokens = run_block(b, tokens, layout, augmentation, key_mask);
    tokens = apply_conditional(tokens, layout, static_cast<int64_t>(b));
  }
  return options_.fc_norm ? tokens : norm_->forward(tokens);
}

torch::Tensor VisionTransformerImpl::features(const torch::Tensor& images) {
  auto [tokens, grid] = embed(images);
  return run_blocks(tokens, grid);
}

std::pair<torch::Tensor, TokenLayout> VisionTransformerImpl::features(
    const std::vector<torch::Tensor>& images) {
  auto [tokens, layout] = embed(images);
  return {run_blocks(tokens, layout), layout};
}

torch::Tensor VisionTransformerImpl::classify(const torch::Tensor& tokens,
                                              const TokenLayout& layout) {
  // class token (DeiT/CPVT) or the mean of the patch tokens (CPVT-GAP; gap_with_token skips the
  // class token, as timm's global_pool='avg' skips its prefix tokens); on a batch of grids the
  // mean of each image's own patch tokens
  const int64_t prefix = options_.prefix_tokens();
  torch::Tensor pooled;  // (B, dim)
  if (options_.head == "token") {
    pooled = tokens.select(1, 0);
  } else if (layout.is_grid_batch()) {
    const auto patches = layout.token_mask().to(tokens.device()).narrow(1, prefix,
                                                                        tokens.size(1) - prefix);
    const auto weights = patches.to(tokens.scalar_type()).unsqueeze(-1);  // (B, N - prefix, 1)
    pooled = (tokens.narrow(1, prefix, tokens.size(1) - prefix) * weights).sum(1) /
             weights.sum(1);
  } else {
    pooled = tokens.narrow(1, prefix, tokens.size(1) - prefix).mean(1);
  }
  if (options_.fc_norm)
    pooled = norm_->forward(pooled);
  return head_->forward(pooled);
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  const auto [tokens, grid] = embed(images);
  return classify(run_blocks(tokens, grid), grid);
}

torch::Tensor VisionTransformerImpl::forward(const std::vector<torch::Tensor>& images) {
  const auto [tokens, layout] = embed(images);
  return classify(run_blocks(tokens, layout), layout);
}

void VisionTransformerImpl::record_attention(bool on) {
  for (auto& block : *blocks_)
    block->as<TransformerBlockImpl>()->attention()->record_attention(on);
}

std::vector<torch::Tensor> VisionTransformerImpl::last_attention() {
  std::vector<torch::Tensor> maps;
  for (auto& block : *blocks_) {
    const auto& probabilities = block->as<TransformerBlockImpl>()->attention()->last_attention();
    TORCH_CHECK(probabilities.defined(),
                "no attention was recorded: call record_attention(true) before forward");
    maps.push_back(probabilities);
  }
  return maps;
}

bool VisionTransformerOptions::has_conditional_encoding() const {
  const EncodingContext context{dim, trained_grid(), heads};
  for (const auto& spec : encodings) {
    if (make_encoding(spec, context)->kind() == EncodingKind::Conditional)
      return true;
  }
  return false;
}

void VisionTransformerImpl::check_image_size(int64_t height, int64_t width) const {
  patch_embed_->check_image_size(height, width);
}

void VisionTransformerImpl::set_pad_to_patch(bool pad) {
  options_.pad_to_patch = pad;
  patch_embed_->set_padding(pad);
}

TokenGrid VisionTransformerImpl::grid_for(const torch::Tensor& images) const {
  TORCH_CHECK(images.dim() == 4, "images must be (B, C, H, W), got ", images.sizes());
  const int64_t patch = options_.patch_size;
  return {(images.size(2) + patch - 1) / patch, (images.size(3) + patch - 1) / patch,
          options_.prefix_tokens()};
}

torch::Tensor VisionTransformerImpl::positional_signal(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  auto [tokens, grid] = embed(images);  // (B, N, dim)
  const int64_t prefix = grid.prefix_tokens;
  if (has_additive_encoding()) {
    auto signal = torch::zeros({grid.grid_tokens(), options_.dim}, tokens.options());
    for (const auto& encoding : *additive_encodings_) {
      auto* additive = encoding->as<AdditiveEncodingImpl>();
      signal += additive->embedding(grid, tokens.options())
                    .select(0, 0)
                    .narrow(0, prefix, grid.grid_tokens());
    }
    return signal;
  }
  TORCH_CHECK(!conditional_slots_.empty(),
              rotary_encodings_->is_empty() && bias_encodings_->is_empty()
                  ? "this model has no positional encoding (--pe none): there is no signal to "
                    "probe"
                  : "this model's only positional encodings act inside attention (rotary or "
                    "bias): they give the tokens no embedding to probe");
  // run the blocks up to the first conditional encoding, without stochastic depth, and take the
  // difference it makes
  const bool was_training = is_training();
  eval();
  const auto first = std::min_element(conditional_slots_.begin(), conditional_slots_.end());
  for (int64_t b = 0; b <= *first; ++b)
    tokens = run_block(static_cast<size_t>(b), tokens, grid, {}, {});  // eval: no augmentation
  auto* encoding =
      conditional_encodings_[first - conditional_slots_.begin()]->as<PositionalEncodingImpl>();
  const auto added = encoding->forward(tokens, grid) - tokens;  // (B, N, dim)
  train(was_training);
  return added.narrow(1, prefix, grid.grid_tokens()).mean(0);
}

bool VisionTransformerImpl::has_additive_encoding() const {
  // `none` is an additive encoding that adds nothing
  return std::any_of(additive_encodings_->begin(), additive_encodings_->end(), [](const auto& m) {
    return m->template as<PositionalEncodingImpl>()->type() != "none";
  });
}

VisionTransformerImpl::WeightDecayGroups VisionTransformerImpl::weight_decay_groups() const {
  WeightDecayGroups groups;
  for (const auto& item : named_parameters()) {
    const auto& name = item.key();
    // norms and biases are 1-D; the class token and every encoding parameter are named
    const bool exempt = item.value().dim() <= 1 || name == "cls_token" ||
                        name.rfind("additive_encodings.", 0) == 0 ||
                        name.rfind("conditional_encodings.", 0) == 0 ||
                        name.rfind("rotary_encodings.", 0) == 0 ||
                        name.rfind("bias_encodings.", 0) == 0;
    (exempt ? groups.not_decayed : groups.decayed).push_back(item.value());
  }
  return groups;
}

}  // namespace posenc
