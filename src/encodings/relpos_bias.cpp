// `relpos_bias`: a learned bias per relative offset and head, added to the attention logits
// (Swin's relative position bias; BEiT's, with its class-token entries). The table holds one row
// per offset (dy, dx) of the trained H0 x W0 grid, (2 H0 - 1)(2 W0 - 1) rows of `heads` values,
// row (dy + H0 - 1)(2 W0 - 1) + (dx + W0 - 1), as timm's relative_position_bias_table; with
// prefix tokens and prefix_entries=true, BEiT's three more rows: prefix query to grid key, grid
// query to prefix key, prefix to prefix, as timm's Beit and RelPosBias (otherwise those logits get
// no bias).
// Other grids: resize=bicubic interpolates the offset table to (2H - 1, 2W - 1) (timm's
// resize_rel_pos_bias_table_simple); resize=geometric is BEiT's geometric resampling (timm's
// resize_rel_pos_bias_table, grid_table_resampling.h); resize=none reads a smaller grid's offsets
// from the table as they are and refuses a larger one, whose offsets the table never learnt.
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/grid_table_resampling.h"

namespace posenc {
namespace {

// The table row of every (query, key) pair of a grid's tokens: (H*W, H*W), rows (dy + H - 1) *
// (2W - 1) + (dx + W - 1) of a (2H - 1) x (2W - 1) offset table.
torch::Tensor offset_rows(const TokenGrid& grid) {
  const auto rows = torch::arange(grid.height).repeat_interleave(grid.width);  // (H*W)
  const auto columns = torch::arange(grid.width).repeat(grid.height);          // (H*W)
  const auto dy = rows.unsqueeze(1) - rows.unsqueeze(0) + (grid.height - 1);
  const auto dx = columns.unsqueeze(1) - columns.unsqueeze(0) + (grid.width - 1);
  return dy * (2 * grid.width - 1) + dx;
}

class RelativePositionBiasEncodingImpl : public AttentionBiasEncodingImpl {
 public:
  RelativePositionBiasEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AttentionBiasEncodingImpl(options, context),
        shared_(options.boolean("shared")),
        resize_(options.choice("resize")),
        prefix_entries_(options.boolean("prefix_entries") &&
                        context.trained_grid.prefix_tokens > 0) {
    const auto& trained = context.trained_grid;
    const int64_t offsets = (2 * trained.height - 1) * (2 * trained.width - 1);
    table_ = register_parameter("relative_position_bias_table",
                                torch::zeros({offsets + (prefix_entries_ ? 3 : 0), heads()}));
    if (options.choice("init") == "normal") {
      torch::NoGradGuard no_grad;
      // Swin's trunc_normal_(std=.02) cuts at +-2 absolute, 100 std: a plain normal
      table_.normal_(0.0, 0.02);
    }
  }
  bool shared_across_blocks() const override { return shared_; }

 protected:
  // -> (heads, prefix + H*W, prefix + H*W)
  torch::Tensor compute_bias(const TokenGrid& grid, const torch::TensorOptions& options) override {
    const auto& trained = context().trained_grid;
    const TokenGrid trained_offsets{2 * trained.height - 1, 2 * trained.width - 1, 0};
    const TokenGrid offsets{2 * grid.height - 1, 2 * grid.width - 1, 0};
    auto table = table_.to(options);
    auto offset_table = table.narrow(0, 0, trained_offsets.height * trained_offsets.width);
    if (offsets.height != trained_offsets.height || offsets.width != trained_offsets.width) {
      if (resize_ == "bicubic") {
        // (rows, heads) as a (1, rows, heads) grid table laid out (2 H0 - 1) x (2 W0 - 1)
        offset_table = resample_grid_table(offset_table.unsqueeze(0), trained_offsets, offsets,
                                           /*antialias=*/false)
                           .squeeze(0);
      } else if (resize_ == "geometric") {
        offset_table = resample_offset_table_geometric(offset_table, trained_offsets, offsets);
      } else {
        TORCH_CHECK(grid.height <= trained.height && grid.width <= trained.width,
                    "relpos_bias learnt offsets up to a ", trained.height, "x", trained.width,
                    " grid and cannot bias a ", grid.height, "x", grid.width,
                    " one, whose offsets it never saw: use relpos_bias:resize=bicubic or "
                    "resize=geometric (BEiT's) to resample the table, or relpos_mlp, which needs "
                    "no table");
        // the central (2H - 1) x (2W - 1) offsets of the table, as they are
        offset_table = offset_table.view({trained_offsets.height, trained_offsets.width, heads()})
                           .narrow(0, trained.height - grid.height, offsets.height)
                           .narrow(1, trained.width - grid.width, offsets.width)
                           .reshape({-1, heads()});
      }
    }
    const int64_t positioned = grid.height * grid.width;
    // (H*W, H*W, heads) -> (heads, H*W, H*W)
    auto bias = offset_table.index_select(0, offset_rows(grid).reshape(-1))
                    .view({positioned, positioned, heads()})
                    .permute({2, 0, 1});
    const int64_t prefix = grid.prefix_tokens;
    if (prefix == 0)
      return bias;
    const auto entry = [&](int64_t from_end, int64_t rows, int64_t columns) {
      // (heads) -> (heads, rows, columns): one of BEiT's prefix entries, or no bias
      if (!prefix_entries_)
        return torch::zeros({heads(), rows, columns}, options);
      return table.select(0, table.size(0) - from_end).view({heads(), 1, 1}).expand(
          {heads(), rows, columns});
    };
    const auto prefix_rows =
        torch::cat({entry(1, prefix, prefix), entry(3, prefix, positioned)}, 2);
    const auto grid_rows = torch::cat({entry(2, positioned, prefix), bias}, 2);
    return torch::cat({prefix_rows, grid_rows}, 1);
  }

 private:
  bool shared_;
  std::string resize_;  // bicubic, geometric or none
  bool prefix_entries_;
  torch::Tensor table_;  // ((2 H0 - 1)(2 W0 - 1) [+ 3], heads)
};

}  // namespace

EncodingDefinition relpos_bias_definition() {
  return define_encoding<RelativePositionBiasEncodingImpl>(
      "relpos_bias",
      "learned relative position bias (Swin, BEiT), in attention: a (heads, N, N) logit term by "
      "the offset between grid tokens, per block or shared; grids only.",
      {{"shared", OptionType::Boolean, false,
        "one table for every block (BEiT's shared relative position bias) instead of one each"},
       {"prefix_entries", OptionType::Boolean, true,
        "BEiT's three entries for the prefix (class) token's logits (timm's Beit and RelPosBias); "
        "false leaves them unbiased"},
       {"resize",
        OptionType::Choice,
        "bicubic",
        "other grids: bicubic = interpolate the offset table (timm's "
        "resize_rel_pos_bias_table_simple); geometric = BEiT's geometric resampling (timm's "
        "resize_rel_pos_bias_table); none = smaller grids read the table as it is, larger ones "
        "are refused",
        {"bicubic", "geometric", "none"}},
       {"init",
        OptionType::Choice,
        "normal",
        "table init: normal = std 0.02 (Swin's trunc_normal_); zeros (BEiT)",
        {"normal", "zeros"}}});
}

}  // namespace posenc
