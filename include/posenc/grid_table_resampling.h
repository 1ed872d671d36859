#pragma once

#include <torch/types.h>

#include "posenc/token_layout.h"

namespace posenc {

// Resamples a learned absolute position table to another grid, as timm's resample_abs_pos_embed:
// the grid part is interpolated bicubically (antialiased when shrinking, if `antialias`), the
// prefix rows are kept as they are.
// table: (1, prefix + H0*W0, C) laid out as `from` -> (1, prefix + H*W, C) laid out as `to`.
// Returns `table` itself when the grids are equal. Throws when the prefix counts differ or the
// table does not have the shape `from` describes.
torch::Tensor resample_grid_table(const torch::Tensor& table, const TokenGrid& from,
                                  const TokenGrid& to, bool antialias = true);

// Resamples a 1-D table of per-row (or per-column) embeddings to a new length with linear
// interpolation of cell centres (align_corners = false).
// table: (L0, C) -> (L, C). Returns `table` itself when L == L0.
torch::Tensor resample_axis_table(const torch::Tensor& table, int64_t length);

}  // namespace posenc
