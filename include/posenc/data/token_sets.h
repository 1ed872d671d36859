#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace posenc {

// A data set of token sets, the input of a SetTransformer: S sets of up to K tokens, each token a
// content vector, a continuous position of G groups of M values, and a class to predict. Sets
// smaller than K are padded; `mask` tells real tokens from padding.
struct TokenSets {
  torch::Tensor content;    // (S, K, D) float32
  torch::Tensor positions;  // (S, K, G, M) float32, finite
  torch::Tensor targets;    // (S, K) int64: a class in [0, classes), or -1 (no target, padding)
  torch::Tensor mask;       // (S, K) bool: true for real tokens
  int64_t classes = 0;

  int64_t size() const { return targets.defined() ? targets.size(0) : 0; }
  int64_t max_tokens() const { return targets.size(1); }
  int64_t content_dim() const { return content.size(2); }
  int64_t groups() const { return positions.size(2); }
  int64_t values() const { return positions.size(3); }
  // Tokens with a target, over all sets.
  int64_t targeted_tokens() const;

  // The sets at `indices` (int64, any order).
  TokenSets select(const torch::Tensor& indices) const;
  // The same sets with every position read as `groups` groups of `values` values, e.g. a box
  // (x1, y1, x2, y2) as G=1, M=4 or as G=2 corners of M=2. Throws when G x M differs from this
  // data's, naming both shapes.
  TokenSets with_position_shape(int64_t groups, int64_t values) const;

  // Throws naming `name` and what is wrong: shapes that disagree, non-finite positions or
  // content, targets outside [-1, classes), a set without tokens or without any target.
  void validate(const std::string& name) const;
};

// Where positions are drawn from: each coordinate of a generated set is mapped from [0, 1] to
// [low, high]. Training uses [0, 1]; evaluating at [0, 2] (larger) or [1, 2] (shifted) tests
// positions the model never saw.
struct CoordinateRange {
  double low = 0.0;
  double high = 1.0;

  // "0:1", "1:2", "-0.5:1.5"; throws for any other form or low >= high.
  static CoordinateRange parse(const std::string& text);
  std::string describe() const;  // "0:1"
  bool operator==(const CoordinateRange& other) const {
    return low == other.low && high == other.high;
  }
};

}  // namespace posenc
