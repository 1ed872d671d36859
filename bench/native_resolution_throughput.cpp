// What a native-resolution batch (images of their own sizes in one padded batch,
// TokenLayout::of_grids) costs a training step, against fixed-resolution training of the same
// model, measured in one run: training steps (forward, backward, AdamW) alternate between
// batches of `--batch` random images at the model's size and batches of `--batch` images whose
// height and width are drawn, each on its own, from `--sizes MIN:MAX` in steps of the patch.
// Prints, per round, real tokens/s of both (prefix and patch tokens of each image, padding not
// counted), the padding share of the mixed batches and the time per real token of mixed over
// fixed (issue 24's goal: at most 1.15); then one JSON object with the medians. With --by-size
// the mixed images of all steps are drawn first and sorted by token count before they are cut
// into batches, as a batcher that groups similar sizes would (less padding, the same images).
//   build/bench/posenc_native_resolution_throughput --model micro --pe peg --sizes 12:44
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "posenc/models/vision_transformer.h"
#include "posenc/system_info.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"posenc native-resolution training throughput"};
  std::string preset = "micro", pe = "peg", head = "token", sizes = "12:44";
  int64_t batch = 128, steps = 10, rounds = 3;
  int threads = 2;
  bool by_size = false;
  app.add_option("--model", preset);
  app.add_option("--pe", pe);
  app.add_option("--head", head);
  app.add_option("--sizes", sizes, "MIN:MAX image side in pixels for the mixed batches");
  app.add_option("--batch", batch, "images per batch, fixed and mixed");
  app.add_option("--steps", steps, "timed steps per kind and round");
  app.add_option("--rounds", rounds);
  app.add_option("--threads", threads);
  app.add_flag("--by-size", by_size, "batch the mixed images sorted by token count");
  CLI11_PARSE(app, argc, argv);
  posenc::configure_threads(threads);
  posenc::configure_memory_allocator();
  const auto colon = sizes.find(':');
  if (colon == std::string::npos) {
    std::cerr << "--sizes must be MIN:MAX, got " << sizes << "\n";
    return 2;
  }
  const int64_t smallest = std::stoll(sizes.substr(0, colon));
  const int64_t largest = std::stoll(sizes.substr(colon + 1));

  torch::manual_seed(0);
  auto options = posenc::VisionTransformerOptions::preset(preset);
  options.encodings = {pe};
  options.head = head;
  if (!options.has_conditional_encoding())
    options.conditional_after_blocks = {};
  const int64_t patch = options.patch_size;
  if (smallest < patch || largest < smallest) {
    std::cerr << "--sizes needs " << patch << " <= MIN <= MAX, got " << sizes << "\n";
    return 2;
  }
  posenc::VisionTransformer model(options);
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(1e-3).weight_decay(0.05));
  const int64_t prefix = options.prefix_tokens();
  const auto fixed_images =
      torch::randn({batch, options.image_channels, options.image_height, options.image_width});
  const auto labels = torch::randint(0, options.classes, {batch}, torch::kLong);
  const double fixed_tokens =
      static_cast<double>(batch * (prefix + (options.image_height / patch) *
                                                (options.image_width / patch)));
  std::mt19937_64 random(1);
  std::uniform_int_distribution<int64_t> side(smallest / patch, largest / patch);
  std::vector<std::pair<int64_t, int64_t>> grids;  // rows, columns of every mixed image
  for (int64_t i = 0; i < steps * batch; ++i) {
    const int64_t rows = side(random);
    grids.emplace_back(rows, side(random));
  }
  if (by_size)
    std::stable_sort(grids.begin(), grids.end(), [](const auto& a, const auto& b) {
      return a.first * a.second < b.first * b.second;
    });
  double real_tokens = 0.0, padded_tokens = 0.0;
  std::vector<std::vector<torch::Tensor>> mixed_batches;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<torch::Tensor> images;
    int64_t longest = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const auto [rows, columns] = grids[static_cast<size_t>(s * batch + b)];
      images.push_back(torch::randn({options.image_channels, rows * patch, columns * patch}));
      real_tokens += static_cast<double>(prefix + rows * columns);
      longest = std::max(longest, rows * columns);
    }
    padded_tokens += static_cast<double>(batch * (prefix + longest));
    mixed_batches.push_back(std::move(images));
  }
  const double mixed_tokens_per_step = real_tokens / static_cast<double>(steps);
  const auto step = [&](const auto& images) {
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(images), labels).backward();
    optimizer.step();
  };
  model->train();
  for (int i = 0; i < 2; ++i) {  // warm-up
    step(fixed_images);
    step(mixed_batches[0]);
  }
  std::vector<double> fixed_rates, mixed_rates, cost_ratios;
  std::cout << "round  fixed tokens/s  mixed tokens/s  time per real token, mixed / fixed\n";
  for (int64_t r = 0; r < rounds; ++r) {
    auto start = Clock::now();
    for (int64_t s = 0; s < steps; ++s)
      step(fixed_images);
    const double fixed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    start = Clock::now();
    for (const auto& images : mixed_batches)
      step(images);
    const double mixed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    fixed_rates.push_back(fixed_tokens * static_cast<double>(steps) / fixed_seconds);
    mixed_rates.push_back(real_tokens / mixed_seconds);
    cost_ratios.push_back(fixed_rates.back() / mixed_rates.back());
    std::cout << r << "  " << fixed_rates.back() << "  " << mixed_rates.back() << "  "
              << cost_ratios.back() << "\n";
  }
  std::cout << nlohmann::json{{"model", preset},
                              {"pe", pe},
                              {"head", head},
                              {"threads", at::get_num_threads()},
                              {"batch", batch},
                              {"fixed_size", {options.image_height, options.image_width}},
                              {"mixed_sides", {smallest, largest}},
                              {"mixed_batched_by_size", by_size},
                              {"fixed_tokens_per_step", fixed_tokens},
                              {"mixed_real_tokens_per_step", mixed_tokens_per_step},
                              {"mixed_padding_share", 1.0 - real_tokens / padded_tokens},
                              {"fixed_tokens_per_second", median(fixed_rates)},
                              {"mixed_real_tokens_per_second", median(mixed_rates)},
                              {"cost_per_real_token_mixed_over_fixed", median(cost_ratios)}}
                   .dump()
            << "\n";
  return 0;
}
