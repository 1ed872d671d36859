#pragma once

#include <vector>

#include <torch/types.h>

#include "posenc/models/vision_transformer.h"

namespace posenc {

// Where each block's classifying query looks, as maps over the patch grid, averaged over heads:
//   token head: the class token's attention to each patch token;
//   gap head:   the attention each patch token receives, averaged over all query tokens.
// images: (B, C_in, H, W), normalised -> (depth, B, h, w); each map sums to at most 1.
torch::Tensor classifier_attention_maps(VisionTransformer& model, const torch::Tensor& images);

// The mean attention distance of each block (the ViT paper's "attention distance"): for every
// patch query, the attention-weighted L2 distance, in patches, to the patch keys it attends,
// averaged over queries, heads and images. Low: local attention; high: global.
// images: (B, C_in, H, W), normalised -> one value per block.
std::vector<double> mean_attention_distance(VisionTransformer& model, const torch::Tensor& images);

}  // namespace posenc
