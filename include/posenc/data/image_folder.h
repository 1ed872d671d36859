#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

#include "posenc/data/image_dataset.h"

namespace posenc {

// Reads a PNG, JPEG, BMP, GIF, TGA or PNM file (stb_image) with `channels` channels (1 grey,
// 3 RGB), converting as needed; `stored_channels`, if given, receives the file's own (1 to 4).
// returns (channels, H, W) uint8. Throws naming the file and the decoder's reason for a missing,
// truncated or undecodable file.
torch::Tensor read_image_file(const std::string& path, int64_t channels,
                              int64_t* stored_channels = nullptr);

// An image folder: one sub-folder per class (sorted names are the classes), image files inside.
// Every image is read with `channels` channels and resized to height x width; the data set's
// `changes` says how many were converted and resized.
// Throws for a missing folder, no class sub-folders, a class without images or a bad image file.
ImageDataset load_image_folder(const std::string& root, int64_t channels, int64_t height,
                               int64_t width);

}  // namespace posenc
