#include "posenc/data/image_folder.h"

#include <stb_image.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/data/image_resize.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& path) {
  static const std::set<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp", ".gif",
                                                   ".tga", ".pgm", ".ppm",  ".pnm"};
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
  return extensions.count(extension) > 0;
}

}  // namespace

torch::Tensor read_image_file(const std::string& path, int64_t channels,
                              int64_t* stored_channels) {
  TORCH_CHECK(channels == 1 || channels == 3, "images can be read with 1 or 3 channels, not ",
              channels);
  TORCH_CHECK(fs::is_regular_file(path), path, ": no such file");
  int width = 0, height = 0, stored = 0;
  // Sizes from the header first: a corrupt 62-byte BMP that claims 3 x 16,711,682 pixels took
  // stb 16 s to "decode" (found by fuzzing). Training images are far smaller than this limit.
  constexpr int kMaxSide = 16384;
  if (stbi_info(path.c_str(), &width, &height, &stored) == 1) {
    TORCH_CHECK(width <= kMaxSide && height <= kMaxSide, path, " claims ", width, " x ", height,
                " pixels; posenc reads images up to ", kMaxSide,
                " pixels a side (is the file corrupt? otherwise resize it first)");
  }
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> pixels(
      stbi_load(path.c_str(), &width, &height, &stored, static_cast<int>(channels)),
      &stbi_image_free);
  TORCH_CHECK(pixels != nullptr, path, ": cannot decode image (", stbi_failure_reason(),
              "); is it a complete PNG/JPEG/BMP file?");
  if (stored_channels != nullptr)
    *stored_channels = stored;
  // (H, W, C) interleaved -> (C, H, W)
  auto image = torch::from_blob(pixels.get(), {height, width, channels}, torch::kUInt8);
  return image.permute({2, 0, 1}).clone();
}

namespace {

ImageDataset read_image_folder(const std::string& root, int64_t channels, int64_t height,
                               int64_t width) {
  TORCH_CHECK(fs::is_directory(root), root,
              ": no such folder; an image folder holds one "
              "sub-folder of images per class");
  TORCH_CHECK(height >= 1 && width >= 1, "image size must be positive, got ", height, "x", width);
  std::vector<fs::path> class_folders;
  // hidden entries (.ipynb_checkpoints, .DS_Store) are not classes or images
  auto hidden = [](const fs::path& path) { return path.filename().string().rfind('.', 0) == 0; };
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && !hidden(entry.path()))
      class_folders.push_back(entry.path());
  }
  std::sort(class_folders.begin(), class_folders.end());
  TORCH_CHECK(class_folders.size() >= 2, root, ": found ", class_folders.size(),
              " class sub-folders; need one sub-folder per class, at least 2");
  ImageDataset dataset;
  dataset.source = root;
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  int64_t converted = 0, resized = 0;
  std::set<int64_t> stored_channel_counts;
  // the smallest and largest sizes resized, by pixel count
  std::pair<int64_t, int64_t> smallest{0, 0}, largest{0, 0};
  for (size_t label = 0; label < class_folders.size(); ++label) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(class_folders[label])) {
      if (entry.is_regular_file() && is_image_file(entry.path()) && !hidden(entry.path()))
        files.push_back(entry.path());
    }
    TORCH_CHECK(!files.empty(), class_folders[label].string(),
                ": no image files (.png, .jpg, .jpeg, .bmp, ...) in this class folder");
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      int64_t stored = channels;
      auto image = read_image_file(file.string(), channels, &stored).unsqueeze(0);
      if (stored != channels) {
        ++converted;
        stored_channel_counts.insert(stored);
      }
      const std::pair<int64_t, int64_t> size{image.size(2), image.size(3)};
      if (size != std::make_pair(height, width)) {
        const auto pixels = [](const std::pair<int64_t, int64_t>& s) { return s.first * s.second; };
        if (resized == 0 || pixels(size) < pixels(smallest))
          smallest = size;
        if (resized == 0 || pixels(size) > pixels(largest))
          largest = size;
        ++resized;
      }
      images.push_back(resize_images(image, height, width));
      labels.push_back(static_cast<int64_t>(label));
    }
    dataset.class_names.push_back(class_folders[label].filename().string());
  }
  const auto count = static_cast<int64_t>(labels.size());
  std::vector<std::string> changes;
  if (converted > 0) {
    changes.push_back(c10::str(converted, " of ", count, " read as ", channels,
                               channels == 1 ? " channel" : " channels", " (stored with ",
                               c10::Join(" or ", stored_channel_counts), ")"));
  }
  if (resized > 0) {
    const auto text = [](const std::pair<int64_t, int64_t>& s) {
      return c10::str(s.first, "x", s.second);
    };
    changes.push_back(c10::str(resized, " of ", count, " resized to ", height, "x", width,
                               " (from ", text(smallest),
                               smallest == largest ? "" : " up to " + text(largest), ")"));
  }
  dataset.changes = c10::Join(", ", changes);
  dataset.images = torch::cat(images, 0);
  dataset.labels = torch::tensor(labels, torch::kLong);
  dataset.validate();
  return dataset;
}

}  // namespace

ImageDataset load_image_folder(const std::string& root, int64_t channels, int64_t height,
                               int64_t width) {
  try {
    return read_image_folder(root, channels, height, width);
  } catch (const fs::filesystem_error& error) {
    // std::filesystem's own text ("filesystem error: directory iterator cannot open directory")
    // names neither the cause in words nor what to do
    TORCH_CHECK(false, "cannot read the image folder ", root, ": ", error.path1().string(), ": ",
                error.code().message(),
                " (a symbolic link that points back into the folder, or no permission?)");
  }
}

}  // namespace posenc
