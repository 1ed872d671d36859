#include "posenc/data/data_source.h"

#include <c10/util/Exception.h>

#include "core/json_keys.h"
#include "posenc/data/idx_file.h"
#include "posenc/data/image_folder.h"

namespace posenc {

void DataSource::validate() const {
  TORCH_CHECK(kind == "fashion-mnist" || kind == "idx" || kind == "folder",
              "unknown data set "
              "kind '",
              kind, "'; use fashion-mnist, idx or folder");
  if (kind == "idx") {
    TORCH_CHECK(!train_images.empty() && !train_labels.empty() && !test_images.empty() &&
                    !test_labels.empty(),
                "IDX data needs four files: --train-images, --train-labels, --test-images, "
                "--test-labels");
  }
  TORCH_CHECK(train_subset >= 0,
              "the training subset size must be 0 (all images) or positive, got ", train_subset);
  if (kind == "folder") {
    TORCH_CHECK(!directory.empty(), "image-folder data needs --data-dir holding train/ and test/");
    TORCH_CHECK(channels == 1 || channels == 3, "image channels must be 1 or 3, got ", channels);
    TORCH_CHECK(height >= 1 && width >= 1, "image size must be positive, got ", height, "x", width);
  }
}

ImageDataset DataSource::load(const std::string& split) const {
  validate();
  TORCH_CHECK(split == "train" || split == "test", "split must be train or test, got ", split);
  const bool train = split == "train";
  ImageDataset dataset;
  if (kind == "fashion-mnist") {
    dataset = load_fashion_mnist(split, directory);
  } else if (kind == "idx") {
    dataset =
        load_idx_dataset(train ? train_images : test_images, train ? train_labels : test_labels);
  } else {
    dataset = load_image_folder(directory + "/" + split, channels, height, width);
  }
  if (!train || train_subset == 0)
    return dataset;
  return dataset.class_balanced_subset(train_subset);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DataSource, kind, directory, train_images,
                                                train_labels, test_images, test_labels, channels,
                                                height, width, train_subset)

nlohmann::json DataSource::to_json() const {
  return nlohmann::json(*this);
}

DataSource DataSource::from_json(const nlohmann::json& json) {
  auto source = read_options_json<DataSource>(json, "data");
  source.validate();
  return source;
}

}  // namespace posenc
