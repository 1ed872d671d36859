#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "posenc/data/image_dataset.h"

namespace posenc {

// Where a run's images come from; stored in checkpoints so eval finds the same data.
//   fashion-mnist: Debian's dataset-fashion-mnist, or `directory` holding the same .gz files
//   idx:           MNIST-format IDX files, train_* and test_* paths (gzip or raw)
//   folder:        image folders `directory`/train/<class>/* and `directory`/test/<class>/*,
//                  read with `channels` channels and resized to height x width
// The test split is always used whole.
struct DataSource {
  // fashion-mnist, idx, folder, or none (an imported model's: loading it says what to give)
  std::string kind = "fashion-mnist";
  std::string directory;
  std::string train_images, train_labels, test_images, test_labels;
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  // Train on a class-balanced subset of this many training images (ImageDataset::
  // class_balanced_subset), for experiments sized to a CPU budget; 0: the whole training split.
  int64_t train_subset = 0;

  // split: "train" or "test"; needs only that split's files
  ImageDataset load(const std::string& split) const;
  // The same data with every path absolute, so a checkpoint finds it from any folder.
  DataSource with_absolute_paths() const;
  // Whether a horizontal flip keeps the class: false for digit-like IDX data.
  bool flips_preserve_class() const { return kind != "idx"; }

  void validate() const;
  nlohmann::json to_json() const;
  static DataSource from_json(const nlohmann::json& json);
};

}  // namespace posenc
