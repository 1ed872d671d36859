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

// Resamples a relative position bias table over offsets to another window by BEiT's geometric
// resampling (unilm's run_class_finetuning.py; timm's resize_rel_pos_bias_table): per axis, the
// source table's 2n + 1 offsets are placed at 0, +-1, +-(1 + q), +-(1 + q + q^2), ... with the
// ratio q in [1.01, 1.5] found by bisection so that the outermost lands near the target's
// outermost offset, and the target's integer offsets are interpolated from them, linearly (timm's
// default; BEiT's original used scipy's cubic interp2d, which SciPy 1.14 removed), clamped at
// the edges. Near the centre offsets keep their values; the far ones stretch.
// table: (from.height * from.width, heads), rows laid out as a from.height x from.width offset
// grid (2 H0 - 1 by 2 W0 - 1), -> (to.height * to.width, heads). Returns `table` itself when the
// extents are equal. Differentiable in `table`.
torch::Tensor resample_offset_table_geometric(const torch::Tensor& table, const TokenGrid& from,
                                              const TokenGrid& to);

}  // namespace posenc
