#include "pad_to_patch_flag.h"

#include <iomanip>

#include <c10/util/Exception.h>

namespace posenc::cli {
namespace {

// Attention holds tokens^2 floats per image and head: 16384 tokens are 1 GiB each, beyond what
// any test size needs (512x512 at patch 4). A larger request ends here, not in an allocation
// failure deep inside LibTorch.
constexpr int64_t kMostTokens = 16384;

}  // namespace

void add_pad_to_patch_flag(CLI::App& command, bool& pad_to_patch) {
  command.add_flag("--pad-to-patch", pad_to_patch,
                   "zero-pad images the patch size does not divide (default: as trained)");
}

void prepare_image_sizes(VisionTransformer& model, bool pad_to_patch,
                         const std::vector<std::pair<int64_t, int64_t>>& sizes) {
  if (pad_to_patch)
    model->set_pad_to_patch(true);
  const int64_t patch = model->options().patch_size;
  for (const auto& [height, width] : sizes) {
    model->check_image_size(height, width);
    // in double: a mistyped size must not overflow the count that refuses it
    const double tokens = static_cast<double>((height + patch - 1) / patch) *
                          static_cast<double>((width + patch - 1) / patch);
    TORCH_CHECK(tokens <= kMostTokens, "image size ", height, "x", width, " makes ", std::fixed,
                std::setprecision(0), tokens, " tokens of ", patch, "x", patch,
                " pixels; attention over them needs ", tokens * tokens * 4.0 / (1 << 30),
                " GiB per image and head. posenc takes up to ", kMostTokens,
                " tokens an image (", 128 * patch, "x", 128 * patch, " here)");
  }
}

}  // namespace posenc::cli
