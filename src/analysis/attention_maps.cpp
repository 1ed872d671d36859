#include "posenc/analysis/attention_maps.h"

#include <torch/torch.h>

#include "posenc/analysis/encoding_similarity.h"

namespace posenc {
namespace {

// Runs the model on `images` and returns each block's attention averaged over heads:
// (depth, B, N, N) with N = prefix + h*w.
torch::Tensor recorded_attention(VisionTransformer& model, const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  model->record_attention(true);
  model->forward(images);
  auto per_block = model->last_attention();  // each (B, heads, N, N)
  model->record_attention(false);
  model->train(was_training);
  std::vector<torch::Tensor> averaged;
  for (const auto& probabilities : per_block)
    averaged.push_back(probabilities.mean(1));
  return torch::stack(averaged);
}

}  // namespace

torch::Tensor classifier_attention_maps(VisionTransformer& model, const torch::Tensor& images) {
  const TokenGrid grid = model->grid_for(images);
  const auto attention = recorded_attention(model, images);  // (depth, B, N, N)
  const int64_t prefix = grid.prefix_tokens;
  const auto received = model->options().head == "token"
                            ? attention.select(2, 0)  // the class token's row
                            : attention.mean(2);      // averaged over the query tokens
  return received.narrow(2, prefix, grid.grid_tokens())
      .reshape({attention.size(0), attention.size(1), grid.height, grid.width});
}

std::vector<double> mean_attention_distance(VisionTransformer& model, const torch::Tensor& images) {
  const TokenGrid grid = model->grid_for(images);
  const auto attention = recorded_attention(model, images);  // (depth, B, N, N)
  const int64_t prefix = grid.prefix_tokens;
  const auto cells = grid_cell_positions(grid.height, grid.width);  // (P, 2)
  const auto distance = torch::cdist(cells, cells);                 // (P, P)
  const auto between_patches = attention.narrow(2, prefix, grid.grid_tokens())
                                   .narrow(3, prefix, grid.grid_tokens());  // (depth, B, P, P)
  // weights renormalised over the patch keys, so attention to the class token does not count
  const auto weighted = (between_patches * distance).sum(-1) / between_patches.sum(-1);
  const auto per_block = weighted.mean({1, 2});  // (depth)
  return std::vector<double>(per_block.data_ptr<float>(),
                             per_block.data_ptr<float>() + per_block.numel());
}

}  // namespace posenc
