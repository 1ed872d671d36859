#include "posenc/train/evaluation.h"

#include <torch/torch.h>

#include "posenc/data/image_resize.h"

namespace posenc {

AccuracyAtResolution evaluate(VisionTransformer& model, const ImageDataset& dataset,
                              const Normalization& normalization, int64_t height, int64_t width,
                              int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  BatchLoader loader(dataset, batch_size, /*shuffle=*/false, /*drop_last=*/false, std::nullopt,
                     normalization, /*seed=*/0);
  loader.start_epoch(0);
  AccuracyAtResolution result{height, width};
  double loss_sum = 0.0;
  int64_t correct = 0;
  while (auto batch = loader.next()) {
    auto logits = model->forward(resize_images(batch->images, height, width));
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch->labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(batch->labels).sum().item<int64_t>();
    result.images += batch->labels.size(0);
  }
  result.accuracy = static_cast<double>(correct) / static_cast<double>(result.images);
  result.loss = loss_sum / static_cast<double>(result.images);
  model->train(was_training);
  return result;
}

}  // namespace posenc
