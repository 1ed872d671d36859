#include "posenc/data/image_dataset.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

void ImageDataset::validate() const {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8, source,
              ": images must be uint8 (N, C, H, W), got ", images.scalar_type(), " ",
              images.sizes());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), source, ": ", images.size(0),
              " images but ", labels.numel(), " labels");
  TORCH_CHECK(images.size(0) > 0, source, ": the data set is empty");
  TORCH_CHECK(classes() >= 2, source, ": need at least 2 classes, got ", classes());
  const auto low = labels.min().item<int64_t>();
  const auto high = labels.max().item<int64_t>();
  TORCH_CHECK(low >= 0 && high < classes(), source, ": labels must lie in [0, ", classes() - 1,
              "], found values from ", low, " to ", high);
}

}  // namespace posenc
