#include "support/tiny_image_task.h"

#include <torch/torch.h>

namespace posenc::testing {

DataSource tiny_image_data(const TemporaryFolder& folder) {
  torch::manual_seed(5);
  for (const auto& [split, count] :
       std::vector<std::pair<std::string, int>>{{"train", 96}, {"test", 30}}) {
    auto labels = torch::randint(0, 3, {count}, torch::kLong);
    auto images = (torch::rand({count, 8, 8}) * 60).to(torch::kUInt8);
    for (int i = 0; i < count; ++i) {
      const int64_t label = labels[i].item<int64_t>();
      images[i].narrow(0, (label / 2) * 4, 4).narrow(1, (label % 2) * 4, 4) += 150;
    }
    const auto bytes = images.contiguous();
    write_idx_file(
        folder.path(split + "-images"), {count, 8, 8},
        std::vector<uint8_t>(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + count * 64),
        true);
    std::vector<uint8_t> label_bytes;
    for (int i = 0; i < count; ++i)
      label_bytes.push_back(static_cast<uint8_t>(labels[i].item<int64_t>()));
    write_idx_file(folder.path(split + "-labels"), {count}, label_bytes, true);
  }
  DataSource data;
  data.kind = "idx";
  data.train_images = folder.path("train-images");
  data.train_labels = folder.path("train-labels");
  data.test_images = folder.path("test-images");
  data.test_labels = folder.path("test-labels");
  return data;
}

VisionTransformerOptions tiny_model() {
  auto options = VisionTransformerOptions::preset("nano");
  options.dim = 16;
  options.depth = 1;
  options.heads = 2;
  options.image_height = options.image_width = 8;
  return options;
}

}  // namespace posenc::testing
