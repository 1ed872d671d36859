#pragma once
// --pad-to-patch on every command that feeds images to a checkpoint's model (eval, predict,
// forward, attention, probe), as on train: zero-pads images the patch size does not divide.
// Padding is not in the weights, so a model trained without it can be tested with it.
#include <cstdint>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "posenc/models/vision_transformer.h"

namespace posenc::cli {

void add_pad_to_patch_flag(CLI::App& command, bool& pad_to_patch);

// Turns padding on in `model` when the flag was given (otherwise the model keeps what it was
// trained with), then checks every (height, width) it will be given before any work: an
// unusable size (one the patch does not divide, or more than 16384 tokens) is refused up front,
// not after the sizes before it were computed.
void prepare_image_sizes(VisionTransformer& model, bool pad_to_patch,
                         const std::vector<std::pair<int64_t, int64_t>>& sizes);

}  // namespace posenc::cli
