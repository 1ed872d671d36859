#include "train/adamw_state.h"

#include <cstdint>
#include <map>
#include <memory>

namespace posenc {
namespace {

// "0x557d638b8ec0" (LibTorch 1.13) or "93999112777408" (2.x): base 0 reads both.
uint64_t parameter_address(const std::string& key, const std::string& path) {
  size_t end = 0;
  uint64_t address = 0;
  try {
    address = std::stoull(key, &end, 0);
  } catch (const std::exception&) {
    end = 0;
  }
  TORCH_CHECK(end == key.size() && !key.empty(), path,
              ": the optimiser state names a parameter '", key,
              "', which is not an address; the checkpoint is corrupt");
  return address;
}

int64_t read_count(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor count;
  archive.read(key, count);
  return count.item<int64_t>();
}

}  // namespace

void load_adamw_state(torch::serialize::InputArchive& archive, torch::optim::AdamW& optimizer,
                      const std::string& path) {
  torch::serialize::InputArchive states;
  archive.read("state", states);
  std::map<uint64_t, std::unique_ptr<torch::optim::AdamWParamState>> saved;
  for (const auto& key : states.keys()) {
    torch::serialize::InputArchive one;
    states.read(key, one);
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->serialize(one);
    saved[parameter_address(key, path)] = std::move(state);
  }

  torch::serialize::InputArchive groups;
  archive.read("param_groups", groups);
  auto& current_groups = optimizer.param_groups();
  const int64_t group_count = read_count(groups, "param_groups/size");
  TORCH_CHECK(group_count == static_cast<int64_t>(current_groups.size()), path, " holds ",
              group_count, " optimiser parameter groups, the model has ", current_groups.size());
  for (int64_t g = 0; g < group_count; ++g) {
    torch::serialize::InputArchive group;
    groups.read("param_groups/" + std::to_string(g), group);
    const auto& parameters = current_groups[g].params();
    const int64_t count = read_count(group, "params/size");
    TORCH_CHECK(count == static_cast<int64_t>(parameters.size()), path, ": optimiser group ", g,
                " holds ", count, " parameters, the model's has ", parameters.size());
    for (int64_t i = 0; i < count; ++i) {
      c10::IValue key;
      group.read("params/" + std::to_string(i), key);
      TORCH_CHECK(key.isString(), path, ": optimiser group ", g, " names parameter ", i,
                  " by a ", key.tagKind(), ", not a string; the checkpoint is corrupt");
      const auto state = saved.find(parameter_address(key.toStringRef(), path));
      if (state == saved.end())
        continue;  // a parameter AdamW has not stepped yet
      TORCH_CHECK(state->second->exp_avg().sizes() == parameters[i].sizes(), path,
                  ": the optimiser state of parameter ", i, " in group ", g, " has shape ",
                  state->second->exp_avg().sizes(), ", the parameter ", parameters[i].sizes());
      optimizer.state()[parameters[i].unsafeGetTensorImpl()] = std::move(state->second);
      saved.erase(state);
    }
    torch::serialize::InputArchive options;
    group.read("options", options);
    static_cast<torch::optim::AdamWOptions&>(current_groups[g].options()).serialize(options);
  }
}

}  // namespace posenc
