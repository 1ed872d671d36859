#include "posenc/train/evaluation.h"

#include <torch/torch.h>

#include "posenc/data/image_resize.h"

namespace posenc {

AccuracyAtResolution evaluate(VisionTransformer& model, const ImageDataset& dataset,
                              const Normalization& normalization, int64_t height, int64_t width,
                              int64_t batch_size, const StopRequest& stop_requested) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  BatchLoader loader(dataset, batch_size, /*shuffle=*/false, /*drop_last=*/false, std::nullopt,
                     normalization, /*seed=*/0);
  loader.start_epoch(0);
  AccuracyAtResolution result{height, width};
  double loss_sum = 0.0;
  while (true) {
    if (stop_requested && stop_requested()) {
      result.complete = false;
      break;
    }
    auto batch = loader.next();
    if (!batch)
      break;
    auto logits = model->forward(resize_images(batch->images, height, width));
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch->labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    result.correct += logits.argmax(1).eq(batch->labels).sum().item<int64_t>();
    result.images += batch->labels.size(0);
  }
  const auto images = static_cast<double>(std::max<int64_t>(1, result.images));
  result.accuracy = static_cast<double>(result.correct) / images;
  result.loss = loss_sum / images;
  model->train(was_training);
  return result;
}

AccuracyAtResolution evaluate_across_ranks(VisionTransformer& model, const ImageDataset& dataset,
                                           const Normalization& normalization, int64_t height,
                                           int64_t width, int64_t batch_size,
                                           Communicator& communicator,
                                           const StopRequest& stop_requested) {
  auto result = evaluate(model, dataset.part(communicator.rank(), communicator.world_size()),
                         normalization, height, width, batch_size, stop_requested);
  if (communicator.world_size() == 1)
    return result;
  // summed in float64: image counts and loss sums stay exact far beyond any test set
  auto sums =
      torch::tensor({result.loss * static_cast<double>(result.images),
                     static_cast<double>(result.correct), static_cast<double>(result.images),
                     result.complete ? 0.0 : 1.0},
                    torch::kFloat64);
  communicator.all_reduce_sum(sums, "summing the evaluation over the ranks");
  result.correct = static_cast<int64_t>(sums[1].item<double>());
  result.images = static_cast<int64_t>(sums[2].item<double>());
  result.complete = sums[3].item<double>() == 0.0;
  const auto images = static_cast<double>(std::max<int64_t>(1, result.images));
  result.accuracy = static_cast<double>(result.correct) / images;
  result.loss = sums[0].item<double>() / images;
  return result;
}

}  // namespace posenc
