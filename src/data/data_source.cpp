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

nlohmann::json DataSource::to_json() const {
  return {{"kind", kind},
          {"directory", directory},
          {"train_images", train_images},
          {"train_labels", train_labels},
          {"test_images", test_images},
          {"test_labels", test_labels},
          {"channels", channels},
          {"height", height},
          {"width", width},
          {"train_subset", train_subset}};
}

DataSource DataSource::from_json(const nlohmann::json& json) {
  DataSource source;
  check_known_keys(json, source.to_json(), "data");
  source.kind = json.value("kind", source.kind);
  source.directory = json.value("directory", "");
  source.train_images = json.value("train_images", "");
  source.train_labels = json.value("train_labels", "");
  source.test_images = json.value("test_images", "");
  source.test_labels = json.value("test_labels", "");
  source.channels = json.value("channels", source.channels);
  source.height = json.value("height", source.height);
  source.width = json.value("width", source.width);
  source.train_subset = json.value("train_subset", source.train_subset);
  source.validate();
  return source;
}

}  // namespace posenc
