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

ImageDataset ImageDataset::part(int64_t index, int64_t count) const {
  TORCH_CHECK(count >= 1 && index >= 0 && index < count, "part ", index, " of ", count,
              " does not exist");
  const int64_t begin = size() * index / count;
  const int64_t end = size() * (index + 1) / count;
  return {images.narrow(0, begin, end - begin), labels.narrow(0, begin, end - begin), class_names,
          c10::str(source, " (part ", index + 1, " of ", count, ")")};
}

}  // namespace posenc
