#include "posenc/data/idx_file.h"

#include <zlib.h>

#include <array>
#include <filesystem>
#include <memory>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

const char* const kFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

namespace {

constexpr int64_t kMaxBytes = int64_t{1} << 34;  // 16 GiB: more is a corrupt header

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};

// Reads exactly `count` bytes or throws naming what was expected.
void read_exactly(gzFile file, void* into, int64_t count, const std::string& path,
                  const char* what) {
  auto* cursor = static_cast<char*>(into);
  int64_t remaining = count;
  while (remaining > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(remaining, 1 << 30));
    const int got = gzread(file, cursor, chunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      TORCH_CHECK(false, path, ": corrupt or unreadable (", message,
                  "); download or reinstall the file");
    }
    TORCH_CHECK(got > 0, path, ": truncated: the ", what, " needs ", count, " bytes but only ",
                count - remaining, " are there; the file is incomplete");
    cursor += got;
    remaining -= got;
  }
}

}  // namespace

torch::Tensor read_idx_file(const std::string& path) {
  TORCH_CHECK(std::filesystem::is_regular_file(path), path, ": no such file");
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  TORCH_CHECK(file != nullptr, path, ": cannot open");
  std::array<unsigned char, 4> magic{};
  read_exactly(file.get(), magic.data(), 4, path, "IDX header");
  TORCH_CHECK(magic[0] == 0 && magic[1] == 0, path,
              ": not an IDX file (the first two bytes must be zero)");
  TORCH_CHECK(magic[2] == 0x08, path, ": IDX data type 0x", std::hex, int{magic[2]},
              " is not supported; only unsigned bytes (0x08) are");
  const int dims = magic[3];
  TORCH_CHECK(dims >= 1 && dims <= 3, path, ": IDX file with ", dims,
              " dimensions; expected 1 (labels) to 3 (images)");
  std::vector<int64_t> sizes;
  int64_t total = 1;
  for (int d = 0; d < dims; ++d) {
    std::array<unsigned char, 4> be{};
    read_exactly(file.get(), be.data(), 4, path, "IDX header");
    const int64_t size = (int64_t{be[0]} << 24) | (be[1] << 16) | (be[2] << 8) | be[3];
    TORCH_CHECK(size >= 1, path, ": dimension ", d, " has size 0");
    // checked before multiplying: the product of corrupt sizes overflows (found by fuzzing)
    TORCH_CHECK(size <= kMaxBytes / total, path,
                ": header claims more than 16 GiB of data; corrupt");
    total *= size;
    sizes.push_back(size);
  }
  auto data = torch::empty(sizes, torch::kUInt8);
  read_exactly(file.get(), data.data_ptr<uint8_t>(), total, path, "IDX data");
  char extra = 0;
  TORCH_CHECK(gzread(file.get(), &extra, 1) == 0, path, ": has data after the ", total,
              " bytes its header announces; corrupt or not an IDX file");
  return data;
}

ImageDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                              std::vector<std::string> class_names) {
  auto images = read_idx_file(images_path);
  auto labels = read_idx_file(labels_path);
  TORCH_CHECK(images.dim() == 3, images_path, ": expected images (N, H, W), got shape ",
              images.sizes());
  TORCH_CHECK(labels.dim() == 1, labels_path, ": expected labels (N), got shape ", labels.sizes());
  TORCH_CHECK(images.size(0) == labels.size(0), images_path, " has ", images.size(0),
              " images but ", labels_path, " has ", labels.size(0), " labels");
  ImageDataset dataset;
  dataset.images = images.unsqueeze(1);  // (N, 1, H, W)
  dataset.labels = labels.to(torch::kLong);
  if (class_names.empty()) {
    const int64_t count = std::max<int64_t>(2, dataset.labels.max().item<int64_t>() + 1);
    for (int64_t c = 0; c < count; ++c)
      class_names.push_back(std::to_string(c));
  }
  dataset.class_names = std::move(class_names);
  dataset.source = images_path;
  dataset.validate();
  return dataset;
}

ImageDataset load_fashion_mnist(const std::string& split, const std::string& directory) {
  TORCH_CHECK(split == "train" || split == "test",
              "Fashion-MNIST split must be 'train' or "
              "'test', got '",
              split, "'");
  const std::string root = directory.empty() ? kFashionMnistDirectory : directory;
  const std::string prefix = root + "/" + (split == "train" ? "train" : "t10k");
  const std::string images = prefix + "-images-idx3-ubyte.gz";
  TORCH_CHECK(std::filesystem::exists(images), "Fashion-MNIST not found: ", images,
              " does not exist. ",
              directory.empty() ? "Install it with: sudo apt-get install dataset-fashion-mnist"
                                : "Point --data-dir at the folder with the four .gz IDX files");
  return load_idx_dataset(images, prefix + "-labels-idx1-ubyte.gz",
                          {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                           "Sneaker", "Bag", "Ankle boot"});
}

}  // namespace posenc
