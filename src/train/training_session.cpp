#include "train/training_session.h"

#include <filesystem>
#include <fstream>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>

namespace posenc {

namespace fs = std::filesystem;

void prepare_output_folder(const std::string& out_dir) {
  std::error_code error;
  fs::create_directories(out_dir, error);
  TORCH_CHECK(!error, "cannot create output folder ", out_dir, ": ", error.message());
  const std::string probe = out_dir + "/.posenc-write-test";
  {
    std::ofstream file(probe);
    file << "probe";
    file.flush();
    TORCH_CHECK(file.good(), "output folder ", out_dir,
                " is not writable (or the disk is full); choose another --out");
  }
  fs::remove(probe, error);
}

std::string checkpoint_path(const std::string& out_dir) {
  return out_dir + "/last.pt";
}

torch::optim::AdamW make_adamw(std::vector<torch::Tensor> decayed,
                               std::vector<torch::Tensor> not_decayed,
                               const TrainingOptions& training) {
  using torch::optim::AdamWOptions;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      std::move(decayed),
      std::make_unique<AdamWOptions>(
          AdamWOptions(training.learning_rate).weight_decay(training.weight_decay)));
  groups.emplace_back(
      std::move(not_decayed),
      std::make_unique<AdamWOptions>(AdamWOptions(training.learning_rate).weight_decay(0.0)));
  return torch::optim::AdamW(std::move(groups), AdamWOptions(training.learning_rate));
}

void set_learning_rate(torch::optim::AdamW& optimizer, double learning_rate) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learning_rate);
  }
}

torch::Tensor cpu_rng_state() {
  return at::detail::getDefaultCPUGenerator().get_state();
}

void restore_cpu_rng_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace posenc
