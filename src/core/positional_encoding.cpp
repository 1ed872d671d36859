#include "posenc/positional_encoding.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

void EncodingContext::validate() const {
  TORCH_CHECK(dim >= 1, "encoding dimension (token channels C) must be >= 1, got ", dim);
  TORCH_CHECK(heads >= 1 && dim % heads == 0, "the encoding's attention heads must divide its ",
              "channels, got C = ", dim, ", heads = ", heads);
  trained_grid.validate();
}

const char* describe(EncodingKind kind) {
  switch (kind) {
    case EncodingKind::Additive:
      return "additive";
    case EncodingKind::Conditional:
      return "conditional";
    case EncodingKind::Rotary:
      return "rotary";
    case EncodingKind::Bias:
      return "bias";
  }
  return "unknown";
}

PositionalEncodingImpl::PositionalEncodingImpl(const EncodingOptions& options,
                                               const EncodingContext& context)
    : torch::nn::Module(options.encoding_name()),
      type_(options.encoding_name()),
      config_(options.resolved()),
      context_(context) {
  context_.validate();
}

torch::Tensor PositionalEncodingImpl::forward(const torch::Tensor& tokens,
                                              const TokenLayout& layout) {
  check_tokens(tokens, layout);
  if (layout.is_grid_batch())
    return transform_each_grid(tokens, layout);
  return transform(tokens, layout);
}

torch::Tensor PositionalEncodingImpl::transform_each_grid(const torch::Tensor& tokens,
                                                          const TokenLayout& layout) {
  // (B, N, C): each distinct grid's images transformed together on that grid, their padding
  // passed through
  auto output = tokens;
  const int64_t count = tokens.size(1);
  for (const auto& [grid, index] : layout.images_by_grid(tokens.device())) {
    const auto rows = tokens.index_select(0, index);  // (B_g, N, C)
    auto transformed = transform(rows.narrow(1, 0, grid.total_tokens()), grid);
    if (grid.total_tokens() < count)
      transformed = torch::cat(
          {transformed, rows.narrow(1, grid.total_tokens(), count - grid.total_tokens())}, 1);
    output = output.index_copy(0, index, transformed);
  }
  return output;
}

void PositionalEncodingImpl::check_tokens(const torch::Tensor& tokens,
                                          const TokenLayout& layout) const {
  const std::string who = "encoding '" + type_ + "'";
  layout.check_tokens(tokens, who);
  TORCH_CHECK(tokens.size(2) == dim(), who, ": tokens have ", tokens.size(2),
              " channels but the encoding was built for C = ", dim());
  TORCH_CHECK(torch::isFloatingType(tokens.scalar_type()), who,
              ": tokens must be floating point, got ", tokens.scalar_type());
  TORCH_CHECK(!layout.has_positions() || accepts_positions(), who,
              " works on token grids only and cannot read explicit positions; `posenc info` "
              "lists the encodings that accept positions");
  check_parameters_match(tokens);
}

void PositionalEncodingImpl::check_parameters_match(const torch::Tensor& tokens) const {
  for (const auto& parameter : parameters()) {
    TORCH_CHECK(parameter.scalar_type() == tokens.scalar_type(), "encoding '", type_,
                "': tokens are ", tokens.scalar_type(), " but its parameters are ",
                parameter.scalar_type(), "; convert one to match (encoding->to(dtype))");
    TORCH_CHECK(parameter.device() == tokens.device(), "encoding '", type_, "': tokens are on ",
                tokens.device(), " but its parameters are on ", parameter.device(),
                "; move one to match (encoding->to(device))");
  }
}

void PositionalEncodingImpl::check_position_shape(const TokenLayout& layout, int64_t groups,
                                                  int64_t values) const {
  const auto& positions = layout.positions();
  TORCH_CHECK(positions.size(2) == groups && positions.size(3) == values, "encoding '", type_,
              "' expects positions (B, N, G=", groups, ", M=", values, "), got shape ",
              positions.sizes());
}

bool AdditiveEncodingImpl::EmbeddingKey::operator==(const EmbeddingKey& other) const {
  return grid == other.grid && dtype == other.dtype && device == other.device &&
         parameters == other.parameters;
}

AdditiveEncodingImpl::EmbeddingKey AdditiveEncodingImpl::embedding_key(
    const TokenGrid& grid, const torch::TensorOptions& options) const {
  EmbeddingKey key{grid, options.dtype(), options.device(), {}};
  for (const auto& parameter : parameters())
    key.parameters.emplace_back(parameter.data_ptr(), parameter._version());
  return key;
}

torch::Tensor AdditiveEncodingImpl::embedding(const TokenLayout& layout,
                                              const torch::TensorOptions& options) {
  const bool cacheable = layout.is_grid() && !torch::GradMode::is_enabled();
  std::optional<EmbeddingKey> key;
  if (cacheable) {
    key = embedding_key(layout.grid(), options);
    if (cached_key_ == key && cached_embedding_._version() == cached_embedding_version_)
      return cached_embedding_;
  }
  torch::Tensor pe = compute_embedding(layout, options);
  // An encoding may return a parameter itself (learned1d at its trained grid): the caller gets a
  // copy, so that a write into the returned PE cannot reach the weights.
  for (const auto& parameter : parameters()) {
    if (pe.is_alias_of(parameter)) {
      pe = pe.clone();
      break;
    }
  }
  // pe: (1 or B, N, C)
  TORCH_INTERNAL_ASSERT(pe.dim() == 3 && pe.size(1) == layout.total_tokens() &&
                        pe.size(2) == dim());
  if (cacheable) {
    cached_key_ = std::move(key);
    cached_embedding_ = pe;
    cached_embedding_version_ = pe._version();
  }
  return pe;
}

void AdditiveEncodingImpl::clear_embedding_cache() {
  cached_key_.reset();
  cached_embedding_ = torch::Tensor();
}

torch::Tensor AdditiveEncodingImpl::with_zero_prefix(const torch::Tensor& positioned,
                                                     int64_t prefix_tokens) {
  if (prefix_tokens == 0)
    return positioned;
  auto zeros =
      torch::zeros({positioned.size(0), prefix_tokens, positioned.size(2)}, positioned.options());
  return torch::cat({zeros, positioned}, 1);
}

torch::Tensor AdditiveEncodingImpl::transform(const torch::Tensor& tokens,
                                              const TokenLayout& layout) {
  return tokens + embedding(layout, tokens.options());
}

}  // namespace posenc
