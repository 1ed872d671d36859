#pragma once

#include <string>

#include <torch/types.h>

#include "posenc/data/image_dataset.h"

namespace posenc {

// Reads an IDX file of unsigned bytes (the MNIST format), gzip-compressed or raw.
// returns a uint8 tensor with the dimensions the header gives.
// Throws naming the file for a missing file, a bad magic number, a type other than ubyte,
// implausible dimensions, truncated data, trailing data or a corrupt gzip stream.
torch::Tensor read_idx_file(const std::string& path);

// Images (N, H, W) and labels (N) IDX files as a dataset of N one-channel images. Class names
// are the label numbers unless `class_names` is given; labels must lie below the class count.
ImageDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                              std::vector<std::string> class_names = {});

// Fashion-MNIST from Debian's dataset-fashion-mnist (or `directory` holding the same four
// files): split "train" (60,000) or "test" (10,000). Names the package or path when missing.
ImageDataset load_fashion_mnist(const std::string& split, const std::string& directory = "");

extern const char* const kFashionMnistDirectory;

}  // namespace posenc
