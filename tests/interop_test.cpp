// PyTorch interop from C++: posenc's writer and hand-written reader of torch.save files agree,
// an exported model imports back to the same outputs, and damaged files give errors, never a
// crash. (tests/python/interop_test.py checks the same against Python's own torch.save.)
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/interop/pytorch_models.h"
#include "posenc/interop/torch_save_files.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::TemporaryFolder;

VisionTransformerOptions small_model(const std::string& encoding) {
  auto options = VisionTransformerOptions::preset("nano");
  options.image_channels = 3;
  options.image_height = options.image_width = 16;
  options.depth = 2;
  options.encodings = {encoding};
  options.conditional_after_blocks = encoding.rfind("peg", 0) == 0
                                         ? std::vector<int64_t>{0, 1}
                                         : std::vector<int64_t>{};
  options.drop_path = 0.0;
  return options;
}

std::string read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), {}};
}

TEST(PyTorchInterop, AnExportedModelImportsBackToTheSameOutputs) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"learned1d", "timm-vit"}, {"peg:k=5", "cpvt"}, {"lff:F=32,H=16", "lff"}};
  for (const auto& [encoding, family] : cases) {
    TemporaryFolder folder;
    torch::manual_seed(3);
    VisionTransformer model(small_model(encoding));
    model->eval();
    write_torch_state_dict(folder.path("model.pth"), export_pytorch_model(*model));
    ImportOptions options;
    options.family = family;
    options.heads = model->options().heads;
    options.image_size = 16;
    auto imported = import_pytorch_model(read_torch_state_dict(folder.path("model.pth")), options);
    const auto images = torch::randn({2, 3, 20, 20});
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(imported.model->forward(images), model->forward(images))) << family;
  }
}

TEST(PyTorchInterop, ReadsTensorsAndRejectsFilesThatAreNotStateDicts) {
  TemporaryFolder folder;
  const auto tensor = torch::arange(12, torch::kFloat64).reshape({3, 4}).t();  // not contiguous
  write_torch_tensor(folder.path("tensor.pth"), tensor);
  EXPECT_TRUE(torch::equal(read_torch_tensor(folder.path("tensor.pth")), tensor));
  expect_error_containing([&] { read_torch_state_dict(folder.path("tensor.pth")); },
                          {"holds a tensor", "not a state dict"});
  write_torch_state_dict(folder.path("dict.pth"), {{"w", torch::ones({2})}});
  expect_error_containing([&] { read_torch_tensor(folder.path("dict.pth")); }, {"not a tensor"});
  expect_error_containing([&] { read_torch_state_dict(folder.path("none.pth")); },
                          {"none.pth does not exist"});
  testing::write_bytes(folder.path("text.pth"), "PK but no zip");
  expect_error_containing([&] { read_torch_state_dict(folder.path("text.pth")); },
                          {"truncated or corrupt"});
  ImportOptions unknown;
  unknown.family = "resnet";
  expect_error_containing(
      [&] { import_pytorch_model(read_torch_state_dict(folder.path("dict.pth")), unknown); },
      {"'patch_embed.proj.weight'"});
}

// The reader is hand-written: damaged files must end in an error, never a crash or a hang.
TEST(PyTorchInterop, DamagedFilesGiveErrorsNotCrashes) {
  TemporaryFolder folder;
  torch::manual_seed(1);
  VisionTransformer model(small_model("learned1d"));
  write_torch_state_dict(folder.path("model.pth"), export_pytorch_model(*model));
  const std::string original = read_bytes(folder.path("model.pth"));
  std::mt19937 random(7);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = original;
    if (trial % 3 == 0) {
      damaged.resize(std::uniform_int_distribution<size_t>(0, original.size() - 1)(random));
    } else {
      for (int flip = 0; flip < 1 + trial % 8; ++flip) {
        const auto at = std::uniform_int_distribution<size_t>(0, damaged.size() - 1)(random);
        damaged[at] = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(random));
      }
    }
    testing::write_bytes(folder.path("damaged.pth"), damaged);
    try {
      read_torch_state_dict(folder.path("damaged.pth"));
    } catch (const c10::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 100) << "most damaged files must be refused";
}

}  // namespace
}  // namespace posenc
