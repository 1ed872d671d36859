#pragma once

#include <cstdint>

#include <torch/types.h>

namespace posenc {

// Positions of the cells of a height x width grid, (row, column) in patch units, row-major:
// (height*width, 2) float32.
torch::Tensor grid_cell_positions(int64_t height, int64_t width);

// signal: (P, C), one positional vector per position -> (P, P): the cosine similarity of every
// pair, the dot product of the vectors scaled to unit length. A zero vector is similar to none.
torch::Tensor cosine_similarity_matrix(const torch::Tensor& signal);

// The Pearson correlation, over all pairs of distinct positions, between the similarity of their
// vectors and the L2 distance between the positions: near -1 when nearer positions look more
// alike in proportion to their distance (what LFF's kernel view predicts), near 0 when similarity
// says nothing about distance; 0 when the similarities have no spread (no encoding). Undefined
// (NaN) where distance cannot vary: fewer than 2 pairs (a 1x1 or 1x2 grid), or every pair at one
// distance. similarity: (P, P); positions: (P, M) -> correlation in [-1, 1], or NaN
double similarity_distance_correlation(const torch::Tensor& similarity,
                                       const torch::Tensor& positions);

// signal: (height*width, C), one vector per grid cell, row-major -> (P, P): the cosine similarity
// of the vectors less their mean. The part every cell shares (LFF's output bias, the mean content
// PEG sees) says nothing about position yet makes every cell look alike.
torch::Tensor centred_similarity(const torch::Tensor& signal);

// How a grid's positional signal follows distance, as `posenc probe` and `posenc demo` report
// it: similarity_distance_correlation of centred_similarity(signal) and the cells' positions
// (near -1: nearer cells look more alike).
double signal_distance_correlation(const torch::Tensor& signal, int64_t height, int64_t width);

}  // namespace posenc
