#include "posenc/data/data_source.h"

#include <filesystem>

#include <c10/util/Exception.h>

#include "core/json_keys.h"
#include "posenc/data/idx_file.h"
#include "posenc/data/image_folder.h"

namespace posenc {

namespace {

// What every use of a data source needs; `split` is "train", "test" or "" for both (training).
void check_data_source(const DataSource& data, const std::string& split) {
  TORCH_CHECK(data.kind == "fashion-mnist" || data.kind == "idx" || data.kind == "folder" ||
                  data.kind == "none",
              "unknown data set kind '", data.kind, "'; use fashion-mnist, idx or folder");
  const bool train = split != "test", test = split != "train";
  if (data.kind == "idx") {
    TORCH_CHECK((!train || (!data.train_images.empty() && !data.train_labels.empty())) &&
                    (!test || (!data.test_images.empty() && !data.test_labels.empty())),
                train && test ? "IDX data needs four files: --train-images, --train-labels, "
                                "--test-images, --test-labels"
                : train       ? "IDX training data needs --train-images and --train-labels"
                              : "IDX test data needs --test-images and --test-labels");
  }
  TORCH_CHECK(data.train_subset >= 0,
              "the training subset size must be 0 (all images) or positive, got ",
              data.train_subset);
  if (data.kind == "folder") {
    TORCH_CHECK(!data.directory.empty(),
                "image-folder data needs --data-dir holding train/ and test/");
    TORCH_CHECK(data.channels == 1 || data.channels == 3, "image channels must be 1 or 3, got ",
                data.channels);
    TORCH_CHECK(data.height >= 1 && data.width >= 1, "image size must be positive, got ",
                data.height, "x", data.width);
  }
}

}  // namespace

void DataSource::validate() const {
  check_data_source(*this, "");
}

ImageDataset DataSource::load(const std::string& split) const {
  TORCH_CHECK(split == "train" || split == "test", "split must be train or test, got ", split);
  check_data_source(*this, split);
  TORCH_CHECK(kind != "none" || split == "test",
              "data kind 'none' has no training images (it is what an imported checkpoint "
              "records); train with --data fashion-mnist, idx or folder");
  TORCH_CHECK(kind != "none",
              "this checkpoint stores no data (it was imported); give the images to evaluate "
              "it on: --data folder --data-dir DIR (DIR/test/ holds one folder per class, in "
              "the model's class order) or --data idx --test-images FILE --test-labels FILE");
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

DataSource DataSource::with_absolute_paths() const {
  DataSource absolute = *this;
  for (std::string* path : {&absolute.directory, &absolute.train_images, &absolute.train_labels,
                            &absolute.test_images, &absolute.test_labels}) {
    if (!path->empty())
      *path = std::filesystem::absolute(*path).lexically_normal().string();
  }
  return absolute;
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
