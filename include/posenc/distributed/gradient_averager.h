#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "posenc/distributed/communicator.h"

namespace posenc {

// Averages gradients over the ranks after backward, the way PyTorch's DistributedDataParallel
// does: the gradients are copied into a few flat buckets, and each bucket takes one all-reduce
// (not one per tensor). The buckets are laid out once, in parameter order.
class GradientAverager {
 public:
  // PyTorch DDP's default bucket_cap_mb.
  static constexpr int64_t kDefaultBucketBytes = 25 * 1024 * 1024;

  // `parameters` are the ones the optimiser updates; a bucket holds parameters of one dtype and
  // at most `bucket_bytes` (a larger parameter gets a bucket of its own).
  explicit GradientAverager(std::vector<torch::Tensor> parameters,
                            int64_t bucket_bytes = kDefaultBucketBytes);

  // Replaces every gradient by its mean over the ranks. A parameter without a gradient on this
  // rank counts as a zero gradient and receives the mean.
  void average(Communicator& communicator);

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Gradient bytes each rank all-reduces per step.
  int64_t bytes_per_step() const { return bytes_per_step_; }

 private:
  struct Bucket {
    size_t first = 0, end = 0;  // parameters_[first, end)
    torch::Tensor flat;         // (sum of their numel) in their dtype
  };
  std::vector<torch::Tensor> parameters_;
  std::vector<Bucket> buckets_;
  int64_t bytes_per_step_ = 0;
};

}  // namespace posenc
