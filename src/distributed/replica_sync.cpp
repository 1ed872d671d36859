#include "posenc/distributed/replica_sync.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {
namespace {

std::vector<torch::Tensor> replica_state(const torch::nn::Module& module) {
  auto tensors = module.parameters();
  for (const auto& buffer : module.buffers())
    tensors.push_back(buffer);
  return tensors;
}

}  // namespace

void broadcast_from_leader(torch::nn::Module& module, Communicator& communicator) {
  if (communicator.world_size() == 1)
    return;
  torch::NoGradGuard no_grad;
  for (auto& tensor : replica_state(module)) {
    auto contiguous = tensor.contiguous();
    communicator.broadcast_from_leader(contiguous, "broadcasting rank 0's parameters");
    if (!contiguous.is_same(tensor))
      tensor.copy_(contiguous);
  }
}

uint64_t replica_fingerprint(const torch::nn::Module& module) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const auto& tensor : replica_state(module)) {
    const auto contiguous = tensor.contiguous();
    const auto* bytes = static_cast<const uint8_t*>(contiguous.data_ptr());
    const auto count = static_cast<size_t>(contiguous.numel() * contiguous.element_size());
    for (size_t i = 0; i < count; ++i)
      hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  }
  return hash;
}

std::vector<int64_t> resynchronise_replicas(torch::nn::Module& module, Communicator& communicator) {
  if (communicator.world_size() == 1)
    return {};
  const auto mine =
      torch::tensor({static_cast<int64_t>(replica_fingerprint(module))}, torch::kLong);
  const auto all = communicator.all_gather(mine, "comparing the replicas");
  std::vector<int64_t> differing;
  for (size_t r = 1; r < all.size(); ++r) {
    if (!torch::equal(all[r], all[0]))
      differing.push_back(static_cast<int64_t>(r));
  }
  if (!differing.empty())
    broadcast_from_leader(module, communicator);
  return differing;
}

}  // namespace posenc
