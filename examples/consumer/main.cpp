// Builds encodings by name and applies them to tokens on a 5x7 grid and at explicit positions.
#include <iostream>

#include <posenc/posenc.h>
#include <torch/torch.h>

int main() {
  const posenc::TokenGrid grid{5, 7, 1};                     // 5x7 patches + a class token
  auto tokens = torch::randn({2, grid.total_tokens(), 32});  // (B, N, C)
  for (const char* spec : {"lff:F=64,H=32,gamma=2", "peg:k=3"}) {
    auto encoding = posenc::make_encoding(spec, {32, grid});
    auto out = encoding->forward(tokens, grid);
    if (out.sizes() != tokens.sizes() || !torch::isfinite(out).all().item<bool>()) {
      std::cerr << spec << ": unexpected output " << out.sizes() << "\n";
      return 1;
    }
    std::cout << spec << " -> " << out.sizes() << "\n";
  }
  // LFF reads any real-valued positions (B, N, G, M), far outside any grid too.
  auto lff = posenc::make_encoding("lff", {32, grid});
  auto points = posenc::TokenLayout::at_positions(torch::rand({2, 50, 1, 2}) * 100);
  auto at_points = lff->forward(torch::randn({2, 50, 32}), points);
  if (!torch::isfinite(at_points).all().item<bool>())
    return 1;
  std::cout << "posenc " << posenc::kVersion << " works from an installed package\n";
  return 0;
}
