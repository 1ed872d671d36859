// Times posenc's VisionTransformer the way bench/compare_models_with_pytorch.py times the same
// model in PyTorch eager: training steps (forward, backward, AdamW) on random 28x28 batches, and
// batch-1 inference latency. Prints one JSON object.
#include <algorithm>
#include <chrono>
#include <iostream>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "posenc/models/vision_transformer.h"
#include "posenc/system_info.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"posenc model throughput"};
  std::string preset = "micro", pe = "peg", head = "gap";
  int64_t batch = 128, steps = 20, latency_runs = 200;
  int threads = 2;
  app.add_option("--model", preset);
  app.add_option("--pe", pe);
  app.add_option("--head", head);
  app.add_option("--batch", batch);
  app.add_option("--steps", steps);
  app.add_option("--latency-runs", latency_runs);
  app.add_option("--threads", threads);
  CLI11_PARSE(app, argc, argv);
  posenc::configure_threads(threads);
  posenc::configure_memory_allocator();

  torch::manual_seed(0);
  auto options = posenc::VisionTransformerOptions::preset(preset);
  options.encodings = {pe};
  options.head = head;
  posenc::VisionTransformer model(options);
  int64_t parameters = 0;
  for (const auto& p : model->parameters())
    parameters += p.numel();
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(1e-3).weight_decay(0.05));
  auto images =
      torch::randn({batch, options.image_channels, options.image_height, options.image_width});
  auto labels = torch::randint(0, options.classes, {batch}, torch::kLong);
  auto train_step = [&] {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    loss.backward();
    optimizer.step();
  };
  model->train();
  for (int i = 0; i < 3; ++i)
    train_step();  // warm-up
  const auto start = Clock::now();
  for (int64_t i = 0; i < steps; ++i)
    train_step();
  const double images_per_second = static_cast<double>(steps * batch) / seconds_since(start);

  model->eval();
  torch::NoGradGuard no_grad;
  auto single = images.narrow(0, 0, 1);
  for (int i = 0; i < 10; ++i)
    model->forward(single);
  std::vector<double> latencies;
  for (int64_t i = 0; i < latency_runs; ++i) {
    const auto begin = Clock::now();
    model->forward(single);
    latencies.push_back(seconds_since(begin) * 1000.0);
  }
  std::sort(latencies.begin(), latencies.end());
  std::cout << nlohmann::json{{"implementation", "posenc"},
                              {"model", preset},
                              {"parameters", parameters},
                              {"threads", at::get_num_threads()},
                              {"train_images_per_second", images_per_second},
                              {"latency_ms_median", latencies[latencies.size() / 2]}}
                   .dump()
            << "\n";
  return 0;
}
