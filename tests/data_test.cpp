// Data: IDX files (gzip or raw), image folders, augmentation and the batch loader, including
// every malformed input a user may hand over.
#include <stb_image_write.h>

#include <filesystem>
#include <fstream>

#include <map>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/data/augmentation.h"
#include "posenc/data/batch_loader.h"
#include "posenc/data/data_source.h"
#include "posenc/data/idx_file.h"
#include "posenc/data/image_folder.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::TemporaryFolder;
using testing::write_bytes;
using testing::write_idx_file;

std::vector<uint8_t> counting_bytes(size_t count) {
  std::vector<uint8_t> bytes(count);
  for (size_t i = 0; i < count; ++i)
    bytes[i] = static_cast<uint8_t>(i % 251);
  return bytes;
}

TEST(IdxFile, ReadsGzipAndRawFilesWithTheirDimensions) {
  TemporaryFolder folder;
  for (bool gzip : {true, false}) {
    const auto path = folder.path(gzip ? "images.gz" : "images");
    write_idx_file(path, {3, 4, 5}, counting_bytes(60), gzip);
    auto data = read_idx_file(path);
    EXPECT_EQ(data.sizes(), (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(data[2][3][4].item<int>(), 59);
  }
}

TEST(IdxFile, ReportsMissingTruncatedAndMalformedFiles) {
  TemporaryFolder folder;
  expect_error_containing([&] { read_idx_file(folder.path("absent.gz")); },
                          {"absent.gz", "no such file"});
  write_idx_file(folder.path("short"), {10, 4, 4}, counting_bytes(100), false);
  expect_error_containing([&] { read_idx_file(folder.path("short")); },
                          {"truncated", "160 bytes", "100"});
  write_idx_file(folder.path("short.gz"), {10, 4, 4}, counting_bytes(100), true);
  expect_error_containing([&] { read_idx_file(folder.path("short.gz")); }, {"truncated"});
  write_bytes(folder.path("text"), "hello world, not an idx file");
  expect_error_containing([&] { read_idx_file(folder.path("text")); }, {"not an IDX file"});
  write_bytes(folder.path("floats"), std::string("\0\0\x0d\x01\0\0\0\x01", 8) + "abcd");
  expect_error_containing([&] { read_idx_file(folder.path("floats")); }, {"0xd", "unsigned bytes"});
  write_idx_file(folder.path("long"), {2}, counting_bytes(5), false);
  expect_error_containing([&] { read_idx_file(folder.path("long")); }, {"data after"});
  write_bytes(folder.path("corrupt.gz"),
              std::string("\x1f\x8b\x08\x00", 4) + std::string(40, '\x7f'));
  expect_error_containing([&] { read_idx_file(folder.path("corrupt.gz")); }, {"corrupt.gz"});
}

TEST(IdxDataset, PairsImagesWithLabelsAndRejectsMismatches) {
  TemporaryFolder folder;
  write_idx_file(folder.path("images"), {4, 2, 3}, counting_bytes(24), true);
  write_idx_file(folder.path("labels"), {4}, {0, 1, 2, 1}, true);
  auto dataset = load_idx_dataset(folder.path("images"), folder.path("labels"));
  EXPECT_EQ(dataset.images.sizes(), (std::vector<int64_t>{4, 1, 2, 3}));
  EXPECT_EQ(dataset.classes(), 3);
  write_idx_file(folder.path("three-labels"), {3}, {0, 1, 2}, true);
  expect_error_containing(
      [&] { load_idx_dataset(folder.path("images"), folder.path("three-labels")); },
      {"4 images", "3 labels"});
  write_idx_file(folder.path("big-labels"), {4}, {0, 1, 12, 1}, true);
  expect_error_containing(
      [&] {
        load_idx_dataset(folder.path("images"), folder.path("big-labels"), {"a", "b", "c"});
      },
      {"labels must lie in [0, 2]", "12"});
}

TEST(FashionMnist, NamesThePackageWhenTheDataIsMissing) {
  TemporaryFolder folder;
  expect_error_containing([&] { load_fashion_mnist("train", folder.path()); },
                          {"Fashion-MNIST not found", "--data-dir"});
  expect_error_containing([] { load_fashion_mnist("validation"); }, {"'train' or 'test'"});
  if (!std::filesystem::exists(kFashionMnistDirectory)) {
    expect_error_containing([] { load_fashion_mnist("test"); },
                            {"apt-get install dataset-fashion-mnist"});
  }
}

void write_png(const std::string& path, int width, int height, int channels, uint8_t value) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width * height * channels), value);
  ASSERT_NE(stbi_write_png(path.c_str(), width, height, channels, pixels.data(), width * channels),
            0);
}

TEST(ImageFolder, LoadsOneClassPerSubFolderResizedToTheRequestedSize) {
  TemporaryFolder folder;
  std::filesystem::create_directories(folder.path("cats"));
  std::filesystem::create_directories(folder.path("dogs"));
  write_png(folder.path("cats/a.png"), 10, 8, 3, 200);
  write_png(folder.path("cats/b.png"), 6, 6, 1, 100);
  write_png(folder.path("dogs/c.png"), 12, 12, 3, 50);
  write_bytes(folder.path("dogs/notes.txt"), "not an image, skipped");
  auto dataset = load_image_folder(folder.path(), 1, 8, 8);
  EXPECT_EQ(dataset.images.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_TRUE(torch::equal(dataset.labels, torch::tensor({0, 0, 1}, torch::kLong)));
  EXPECT_EQ(dataset.images[0].max().item<int>(), 200);
  EXPECT_EQ(dataset.images[2].min().item<int>(), 50);
  // said when a run starts, instead of converting silently
  EXPECT_EQ(dataset.changes,
            "2 of 3 read as 1 channel (stored with 3), 3 of 3 resized to 8x8 (from 6x6 up to "
            "12x12)");
  const auto colour = load_image_folder(folder.path(), 3, 8, 8);
  EXPECT_EQ(colour.changes.rfind("1 of 3 read as 3 channels (stored with 1)", 0), 0u)
      << colour.changes;
}

// Hidden entries are neither classes nor images; a test split is checked against the training
// split's classes by name, not only by count.
TEST(ImageFolder, SkipsHiddenEntriesAndTheTestClassesMustBeTheTrainingClasses) {
  TemporaryFolder folder;
  for (const char* name : {"train/circle", "train/stripes", "train/.ipynb_checkpoints",
                           "test/apple", "test/zebra", "cased/Dog", "cased/cat",
                           "lower/cat", "lower/dog"})
    std::filesystem::create_directories(folder.path(name));
  for (const char* name : {"train/circle/a.png", "train/stripes/b.png",
                           "train/.ipynb_checkpoints/c.png", "train/circle/.hidden.png",
                           "test/apple/d.png", "test/zebra/e.png", "cased/Dog/f.png",
                           "cased/cat/g.png", "lower/cat/h.png", "lower/dog/i.png"})
    write_png(folder.path(name), 4, 4, 1, 10);
  const auto train = load_image_folder(folder.path("train"), 1, 4, 4);
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"circle", "stripes"}));
  EXPECT_EQ(train.size(), 2);
  EXPECT_NO_THROW(check_same_classes(train, train));
  expect_error_containing(
      [&] { check_same_classes(train, load_image_folder(folder.path("test"), 1, 4, 4)); },
      {"the test classes (apple, zebra", "are not the training classes (circle, stripes"});
  expect_error_containing(
      [&] {
        check_same_classes(load_image_folder(folder.path("cased"), 1, 4, 4),
                           load_image_folder(folder.path("lower"), 1, 4, 4));
      },
      {"(Dog, cat", "differ in case only"});
}

TEST(ImageFolder, ReportsMissingFoldersEmptyClassesAndBrokenImages) {
  TemporaryFolder folder;
  expect_error_containing([&] { load_image_folder(folder.path("nowhere"), 1, 8, 8); },
                          {"no such folder"});
  std::filesystem::create_directories(folder.path("only"));
  expect_error_containing([&] { load_image_folder(folder.path(), 1, 8, 8); }, {"found 1 class"});
  std::filesystem::create_directories(folder.path("empty"));
  write_png(folder.path("only/a.png"), 4, 4, 1, 1);
  expect_error_containing([&] { load_image_folder(folder.path(), 1, 8, 8); },
                          {"empty", "no image files"});
  write_bytes(folder.path("empty/broken.png"), "\x89PNG\r\n\x1a\n truncated");
  expect_error_containing([&] { load_image_folder(folder.path(), 1, 8, 8); },
                          {"broken.png", "cannot decode"});
  // a link to itself: std::filesystem's own text before
  TemporaryFolder looped;
  std::filesystem::create_directories(looped.path("cats"));
  write_png(looped.path("cats/a.png"), 4, 4, 1, 1);
  std::filesystem::create_directory_symlink(looped.path("loop"), looped.path("loop"));
  expect_error_containing([&] { load_image_folder(looped.path(), 1, 8, 8); },
                          {"cannot read the image folder", "loop", "symbolic link"});
}

TEST(Augmentation, DisabledAugmentationIsTheIdentityAndFlipsAreMirrors) {
  auto image = torch::rand({2, 5, 6});
  auto copy = image.clone();
  std::mt19937_64 rng(1);
  augment_image(copy.data_ptr<float>(), 2, 5, 6, {0.0, 0, 0.0}, rng);
  EXPECT_TRUE(torch::equal(copy, image));
  augment_image(copy.data_ptr<float>(), 2, 5, 6, {0.0, 0, 1.0}, rng);
  EXPECT_TRUE(torch::equal(copy, image.flip({2})));
  // a padded crop moves the content by at most `padding` pixels and fills with zeros
  auto ones = torch::ones({1, 6, 6});
  augment_image(ones.data_ptr<float>(), 1, 6, 6, {0.0, 2, 0.0}, rng);
  EXPECT_GE(ones.sum().item<float>(), 16.0f);
  auto resized = torch::ones({1, 8, 8});
  augment_image(resized.data_ptr<float>(), 1, 8, 8, {0.3, 0, 0.0}, rng);
  EXPECT_TRUE(torch::allclose(resized, torch::ones({1, 8, 8})));  // a constant stays constant
  expect_error_containing([] { AugmentationOptions{1.5, 0, 0.0}.validate(); }, {"(0, 1]"});
  expect_error_containing([] { AugmentationOptions{0.0, -1, 0.0}.validate(); }, {"padding"});
}

ImageDataset counting_dataset(int64_t count) {
  ImageDataset dataset;
  dataset.images =
      torch::arange(count * 4).remainder(256).to(torch::kUInt8).reshape({count, 1, 2, 2});
  dataset.labels = torch::arange(count).remainder(3);
  dataset.class_names = {"a", "b", "c"};
  dataset.source = "counting";
  return dataset;
}

TEST(ImageDataset, ClassBalancedSubsetTakesTheFirstImagesOfEachClassInOrder) {
  // labels 0,1,2,0,1,2,... but class 2 replaced by 0 after the first two: class 2 is scarce
  auto dataset = counting_dataset(30);
  dataset.labels.index_put_(
      {torch::indexing::Slice(6, torch::indexing::None)},
      dataset.labels.index({torch::indexing::Slice(6, torch::indexing::None)}).remainder(2));
  const auto counts = [](const ImageDataset& d) {
    const auto bins = torch::bincount(d.labels, {}, d.classes());
    return std::vector<int64_t>(bins.data_ptr<int64_t>(), bins.data_ptr<int64_t>() + 3);
  };
  ASSERT_EQ(counts(dataset)[2], 2);

  const auto even = dataset.class_balanced_subset(6);
  EXPECT_EQ(counts(even), (std::vector<int64_t>{2, 2, 2}));
  // the first images of each class, in stored order: the same as the first 6 images here
  EXPECT_TRUE(torch::equal(even.images, dataset.images.narrow(0, 0, 6)));

  const auto filled = dataset.class_balanced_subset(12);  // class 2 gives its 2, the rest fill up
  EXPECT_EQ(counts(filled), (std::vector<int64_t>{5, 5, 2}));
  EXPECT_TRUE(torch::equal(filled.images, dataset.class_balanced_subset(12).images));
  const auto odd = dataset.class_balanced_subset(7);
  EXPECT_EQ(counts(odd), (std::vector<int64_t>{3, 2, 2}));

  EXPECT_TRUE(torch::equal(dataset.class_balanced_subset(30).images, dataset.images));
  expect_error_containing([&] { dataset.class_balanced_subset(31); }, {"31", "from 1 to 30"});
  expect_error_containing([&] { dataset.class_balanced_subset(0); }, {"from 1 to 30"});
  DataSource source;
  source.train_subset = -1;
  expect_error_containing([&] { source.validate(); }, {"subset", "-1"});
}

TEST(BatchLoader, ServesASeededOrderThatAResumedEpochReproduces) {
  const auto dataset = counting_dataset(40);
  const Normalization normalization{{0.5}, {0.25}};
  BatchLoader loader(dataset, 8, true, true, AugmentationOptions{}, normalization, 7, {12, 16});
  std::vector<Batch> full;
  loader.start_epoch(3);
  while (auto batch = loader.next())
    full.push_back(*batch);
  ASSERT_EQ(full.size(), 5u);
  BatchLoader resumed(dataset, 8, true, true, AugmentationOptions{}, normalization, 7, {12, 16});
  resumed.start_epoch(3, 2);
  for (size_t b = 2; b < 5; ++b) {
    auto batch = resumed.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_TRUE(torch::equal(batch->images, full[b].images)) << "batch " << b;
    EXPECT_TRUE(torch::equal(batch->labels, full[b].labels));
    EXPECT_EQ(batch->resolution, full[b].resolution);
  }
  EXPECT_FALSE(resumed.next().has_value());
  // another epoch, another order
  loader.start_epoch(4);
  EXPECT_FALSE(torch::equal(loader.next()->labels, full[0].labels));
}

// Native sizes: each image resized to its own height and width, multiples of the step in the
// range, drawn from (seed, epoch, image) alone: the same in a resumed epoch and on any shard.
TEST(BatchLoader, GivesEachImageItsOwnSeededSizeForNativeResolutionBatches) {
  const auto dataset = counting_dataset(40);
  const Normalization normalization{{0.5}, {0.25}};
  const NativeSizes sizes{3, 13, 4};  // sides 4, 8 or 12
  BatchLoader loader(dataset, 8, true, true, std::nullopt, normalization, 7, {}, {}, sizes);
  loader.start_epoch(1);
  std::map<int64_t, std::pair<int64_t, int64_t>> size_of;  // label -> size (labels repeat)
  std::set<std::pair<int64_t, int64_t>> seen;
  std::vector<Batch> epoch;
  while (auto batch = loader.next()) {
    ASSERT_EQ(batch->sized_images.size(), 8u);
    for (const auto& image : batch->sized_images) {
      ASSERT_EQ(image.dim(), 3);
      EXPECT_EQ(image.size(0), 1);
      for (const int64_t side : {image.size(1), image.size(2)})
        EXPECT_TRUE(side == 4 || side == 8 || side == 12) << side;
      seen.insert({image.size(1), image.size(2)});
    }
    epoch.push_back(*batch);
  }
  EXPECT_GE(seen.size(), 5u) << "sizes and aspect ratios vary";
  // a resumed epoch, and the second of two shards, see the same images at the same sizes
  BatchLoader resumed(dataset, 4, true, true, std::nullopt, normalization, 7, {}, {1, 2}, sizes);
  resumed.start_epoch(1, 3);
  const auto shard = resumed.next();
  ASSERT_TRUE(shard.has_value());
  for (int64_t i = 0; i < 4; ++i) {
    const auto& expected = epoch[3].sized_images[static_cast<size_t>(4 + i)];
    EXPECT_TRUE(torch::equal(shard->sized_images[static_cast<size_t>(i)], expected)) << i;
  }
  // another epoch, other sizes
  loader.start_epoch(2);
  const auto next_epoch = loader.next();
  bool differs = false;
  for (size_t i = 0; i < 8; ++i)
    differs = differs || next_epoch->sized_images[i].sizes() != epoch[0].sized_images[i].sizes();
  EXPECT_TRUE(differs);
  expect_error_containing(
      [&] {
        BatchLoader none(dataset, 8, true, true, std::nullopt, normalization, 7, {}, {},
                         NativeSizes{5, 7, 4});
      },
      {"native sizes 5:7", "no multiple of the patch size 4"});
}

TEST(Normalization, MeasuresEachChannelsMeanAndStandardDeviation) {
  ImageDataset dataset;
  dataset.images = torch::randint(0, 256, {50, 3, 6, 7}, torch::kLong).to(torch::kUInt8);
  dataset.images.select(1, 2).fill_(9);  // a constant channel keeps a usable, tiny std
  const auto measured = Normalization::measure(dataset);
  for (int64_t c = 0; c < 2; ++c) {
    auto plane = dataset.images.select(1, c).to(torch::kFloat64) / 255.0;
    EXPECT_NEAR(measured.mean[c], plane.mean().item<double>(), 1e-12);
    EXPECT_NEAR(measured.std[c], plane.std(/*unbiased=*/false).item<double>(), 1e-12);
  }
  EXPECT_NEAR(measured.mean[2], 9.0 / 255.0, 1e-12);
  EXPECT_EQ(measured.std[2], 1e-6);
}

TEST(BatchLoader, NormalisesAndKeepsEveryImageOnceWithoutShuffling) {
  const auto dataset = counting_dataset(10);
  BatchLoader loader(dataset, 4, false, false, std::nullopt, Normalization{{0.0}, {1.0}}, 0);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  loader.start_epoch(0);
  std::vector<torch::Tensor> images;
  while (auto batch = loader.next())
    images.push_back(batch->images);
  auto all = torch::cat(images);
  EXPECT_TRUE(torch::allclose(all * 255.0, dataset.images.to(torch::kFloat32)));
  expect_error_containing(
      [&] {
        BatchLoader too_big(dataset, 64, true, true, std::nullopt, Normalization{{0.0}, {1.0}}, 0);
      },
      {"fewer than one batch", "--batch-size"});
}

}  // namespace
}  // namespace posenc
