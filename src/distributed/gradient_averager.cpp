#include "posenc/distributed/gradient_averager.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

GradientAverager::GradientAverager(std::vector<torch::Tensor> parameters, int64_t bucket_bytes)
    : parameters_(std::move(parameters)) {
  TORCH_CHECK(bucket_bytes > 0, "gradient bucket size must be positive, got ", bucket_bytes);
  auto close_bucket = [&](size_t first, size_t end, int64_t elements) {
    buckets_.push_back({first, end, torch::empty({elements}, parameters_[first].options())});
  };
  size_t first = 0;
  int64_t elements = 0, bytes = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& parameter = parameters_[i];
    TORCH_CHECK(parameter.device().is_cpu(), "gradient averaging runs on CPU parameters");
    const int64_t parameter_bytes = parameter.numel() * parameter.element_size();
    const bool fits = parameter.scalar_type() == parameters_[first].scalar_type() &&
                      bytes + parameter_bytes <= bucket_bytes;
    if (i > first && !fits) {
      close_bucket(first, i, elements);
      first = i;
      elements = bytes = 0;
    }
    elements += parameter.numel();
    bytes += parameter_bytes;
    bytes_per_step_ += parameter_bytes;
  }
  if (first < parameters_.size())
    close_bucket(first, parameters_.size(), elements);
}

void GradientAverager::average(Communicator& communicator) {
  if (communicator.world_size() == 1)
    return;
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / static_cast<double>(communicator.world_size());
  for (auto& bucket : buckets_) {
    int64_t offset = 0;
    for (size_t i = bucket.first; i < bucket.end; ++i) {
      auto& parameter = parameters_[i];
      auto slot = bucket.flat.narrow(0, offset, parameter.numel());
      const auto& gradient = parameter.grad();
      if (gradient.defined())
        slot.view_as(parameter).copy_(gradient);
      else
        slot.zero_();
      offset += parameter.numel();
    }
    communicator.all_reduce_sum(bucket.flat, "gradient all-reduce");
    bucket.flat.mul_(scale);
    offset = 0;
    for (size_t i = bucket.first; i < bucket.end; ++i) {
      auto& parameter = parameters_[i];
      auto mean = bucket.flat.narrow(0, offset, parameter.numel()).view_as(parameter);
      if (parameter.grad().defined())
        parameter.mutable_grad().copy_(mean);
      else
        parameter.mutable_grad() = mean.clone();
      offset += parameter.numel();
    }
  }
}

}  // namespace posenc
