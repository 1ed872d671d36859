#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "posenc/train/run_config.h"
#include "posenc/train/trained_model.h"

namespace posenc::cli {

// --data, --data-dir, --test-images, --test-labels and --channels of the commands that read a
// checkpoint's test images (eval, attention, probe) or store them (import): the data a
// checkpoint records is where it was trained, or nothing for an imported model.
struct TestDataFlags {
  std::string kind, directory, test_images, test_labels;
  int64_t channels = 0;
};

// `stored_default`: what the flags default to, for --help ("what the checkpoint records").
void add_test_data_flags(CLI::App& command, TestDataFlags& flags,
                         const std::string& stored_default = "what the checkpoint records");

// `config`'s data with the flags given applied, every path absolute. An image folder is read with
// the model's channels and resized to its image size unless --channels says otherwise.
void apply_test_data_flags(RunConfig& config, const TestDataFlags& flags,
                           const CLI::App& command);

// The model of `checkpoint` with the test data the flags give, and its first `count` test images
// at `resolution` (a --resolution value; empty: the trained size), normalised as in training:
// what attention and probe draw. The size is checked before any image is read; pad_to_patch is
// --pad-to-patch. images: (B <= count, C, H, W)
struct ModelAndImages {
  TrainedModel trained;
  torch::Tensor images;
};
ModelAndImages model_and_test_images(const std::string& checkpoint, const std::string& resolution,
                                     int64_t count, bool pad_to_patch,
                                     const TestDataFlags& flags, const CLI::App& command);

}  // namespace posenc::cli
