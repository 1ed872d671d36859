// `posenc demo`: a one-screen tour of the registered encodings, built at their defaults for C = 64
// on a 7x7 grid with a class token (a `nano` ViT on 28x28 images): their kind, how their
// parameter count grows with the trained grid, whether they run on grids never seen, and how well
// the similarity of their embeddings follows the 2-D distance between patches.
#include <algorithm>
#include <iomanip>
#include <iostream>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "commands.h"
#include "posenc/analysis/encoding_similarity.h"
#include "posenc/encoding_registry.h"

namespace posenc::cli {
namespace {

constexpr int64_t kDim = 64;
const TokenGrid kTrainedGrid{7, 7, 1};

int64_t parameter_count(const PositionalEncoding& encoding) {
  int64_t count = 0;
  for (const auto& parameter : encoding->parameters())
    count += parameter.numel();
  return count;
}

// Runs the encoding on random tokens laid out on `grid`; "ok" or why it cannot.
std::string try_grid(PositionalEncoding& encoding, const TokenGrid& grid) {
  try {
    auto out = encoding->forward(torch::randn({2, grid.total_tokens(), kDim}), grid);
    return torch::isfinite(out).all().item<bool>() ? "ok" : "non-finite";
  } catch (const c10::Error&) {
    return "refused";
  }
}

// The embedding's signal_distance_correlation on `grid`, as `posenc probe` reports it for a
// trained model: near -1 when nearer patches have more alike embeddings.
double table_distance_correlation(AdditiveEncodingImpl& encoding, const TokenGrid& grid) {
  torch::NoGradGuard no_grad;
  auto pe = encoding.embedding(grid, torch::kFloat32)
                .squeeze(0)
                .narrow(0, grid.prefix_tokens, grid.grid_tokens());  // (H*W, C)
  return signal_distance_correlation(pe, grid.height, grid.width);
}

void run_demo() {
  torch::manual_seed(0);
  int name_width = 9;
  for (const auto& definition : registered_encodings())
    name_width = std::max(name_width, static_cast<int>(definition.name.size()) + 2);
  std::cout << "Encodings at their defaults, C = " << kDim << ", trained on a "
            << kTrainedGrid.describe() << ":\n\n"
            << std::left << std::setw(name_width) << "encoding" << std::setw(13) << "kind"
            << std::setw(11)
            << "params@7x7" << std::setw(13) << "params@14x14" << std::setw(6) << "1x1"
            << std::setw(6) << "5x9" << std::setw(8) << "14x14"
            << "corr(PE similarity, distance)\n";
  for (const auto& definition : registered_encodings()) {
    const nlohmann::json config = {{"type", definition.name}};
    auto encoding = make_encoding(config, {kDim, kTrainedGrid});
    auto larger = make_encoding(config, {kDim, {14, 14, 1}});
    auto* additive = dynamic_cast<AdditiveEncodingImpl*>(encoding.get());
    std::string correlation = "n/a (depends on token content)";
    if (encoding->kind() == EncodingKind::Rotary || encoding->kind() == EncodingKind::Bias) {
      correlation = "n/a (acts in attention)";
    } else if (definition.name == "none") {
      correlation = "n/a (no embedding)";
    } else if (additive != nullptr) {
      correlation = c10::str(std::fixed, std::setprecision(3),
                             table_distance_correlation(*additive, kTrainedGrid));
    }
    std::cout << std::setw(name_width) << definition.name << std::setw(13)
              << describe(encoding->kind())
              << std::setw(11) << parameter_count(encoding) << std::setw(13)
              << parameter_count(larger) << std::setw(6) << try_grid(encoding, {1, 1, 1})
              << std::setw(6) << try_grid(encoding, {5, 9, 1}) << std::setw(8)
              << try_grid(encoding, {14, 14, 1}) << correlation << "\n";
  }
  std::cout
      << "\nAll untrained (seed 0). The last column is the Pearson correlation, over pairs of\n"
         "distinct patches, between the cosine similarity of their embeddings (less the mean\n"
         "embedding) and their 2-D distance, as `posenc probe` reports it for a trained model:\n"
         "near -1 when nearer patches look more alike. `posenc info` lists every option of\n"
         "every encoding.\n";
}

}  // namespace

void add_demo_command(CLI::App& app) {
  app.add_subcommand("demo",
                     "Tour of the encodings: kind, parameters, unseen grids, distance "
                     "structure")
      ->callback(run_demo);
}

}  // namespace posenc::cli
