#include "posenc/train/trained_model.h"

#include <algorithm>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/data/image_resize.h"
#include "posenc/train/checkpoint.h"

namespace posenc {

TrainedModel load_trained_model(const std::string& checkpoint) {
  TrainedModel trained;
  trained.config = RunConfig::from_json(read_checkpoint_config(checkpoint));
  trained.model = VisionTransformer(trained.config.model);
  load_model_tensors(checkpoint, *trained.model);
  trained.model->eval();
  return trained;
}

torch::Tensor TrainedModel::first_test_images(int64_t count, int64_t height, int64_t width) const {
  const auto test = config.data.load("test");
  TORCH_CHECK(count >= 1, "asked for ", count, " test images; ask for at least 1");
  count = std::min(count, test.size());
  const auto& norm = config.normalization;
  const auto mean =
      torch::tensor(norm.mean, torch::kFloat64).to(torch::kFloat32).view({1, -1, 1, 1});
  const auto std = torch::tensor(norm.std, torch::kFloat64).to(torch::kFloat32).view({1, -1, 1, 1});
  const auto pixels = test.images.narrow(0, 0, count).to(torch::kFloat32) / 255.0;
  return resize_images((pixels - mean) / std, height, width);
}

}  // namespace posenc
