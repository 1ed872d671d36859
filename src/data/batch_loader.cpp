#include "posenc/data/batch_loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/data/image_resize.h"

namespace posenc {
namespace {

// A well-mixed 64-bit seed from several values (splitmix64 steps).
uint64_t mix(std::initializer_list<uint64_t> values) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (uint64_t value : values) {
    state ^= value + 0x9E3779B97F4A7C15ull + (state << 6) + (state >> 2);
    state = (state ^ (state >> 30)) * 0xBF58476D1CE4E5B9ull;
    state = (state ^ (state >> 27)) * 0x94D049BB133111EBull;
    state ^= state >> 31;
  }
  return state;
}

// The sides, in steps, that native sizes allow: the multiples of `step` in [smallest, largest],
// at least one step. Empty (first > last) when there is none.
std::pair<int64_t, int64_t> native_side_steps(const NativeSizes& sizes) {
  const int64_t step = std::max<int64_t>(sizes.step, 1);
  return {std::max<int64_t>((sizes.smallest + step - 1) / step, 1), sizes.largest / step};
}

}  // namespace

Normalization Normalization::measure(const ImageDataset& dataset) {
  // From the histogram of byte values per channel: exact, and without a floating-point copy of
  // the whole data set.
  Normalization normalization;
  for (int64_t c = 0; c < dataset.channels(); ++c) {
    const auto counts =
        torch::bincount(dataset.images.select(1, c).flatten(), {}, 256).to(torch::kFloat64);
    const auto values = torch::arange(256, torch::kFloat64) / 255.0;
    const double total = counts.sum().item<double>();
    const double mean = (counts * values).sum().item<double>() / total;
    const double variance = (counts * (values - mean).pow(2)).sum().item<double>() / total;
    normalization.mean.push_back(mean);
    normalization.std.push_back(std::max(std::sqrt(variance), 1e-6));
  }
  return normalization;
}

BatchLoader::BatchLoader(const ImageDataset& dataset, int64_t batch_size, bool shuffle,
                         bool drop_last, std::optional<AugmentationOptions> augmentation,
                         Normalization normalization, uint64_t seed,
                         std::vector<int64_t> resolutions, Shard shard,
                         NativeSizes native_sizes)
    : images_(dataset.images.contiguous()),
      labels_(dataset.labels.to(torch::kLong).contiguous()),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      augmentation_(std::move(augmentation)),
      normalization_(std::move(normalization)),
      seed_(seed),
      resolutions_(std::move(resolutions)),
      shard_(shard),
      native_sizes_(native_sizes) {
  TORCH_CHECK(batch_size >= 1, "batch size must be >= 1, got ", batch_size);
  TORCH_CHECK(shard.count >= 1 && shard.index >= 0 && shard.index < shard.count, "shard ",
              shard.index, " of ", shard.count, " does not exist");
  TORCH_CHECK(shard.count == 1 || drop_last,
              "a sharded loader drops the last partial batch, so that every rank gets a full one");
  TORCH_CHECK(native_sizes.largest == 0 ||
                  (native_sizes.step >= 1 && native_sizes.smallest >= 1 &&
                   native_side_steps(native_sizes).first <= native_side_steps(native_sizes).second),
              "native sizes ", native_sizes.smallest, ":", native_sizes.largest,
              " hold no multiple of the patch size ", native_sizes.step,
              " that is at least one patch; widen the range");
  TORCH_CHECK(static_cast<int64_t>(normalization_.mean.size()) == dataset.channels(),
              "normalisation has ", normalization_.mean.size(), " channels but the images have ",
              dataset.channels());
  TORCH_CHECK(!drop_last || dataset.size() >= batch_size * shard.count, dataset.source, " has ",
              dataset.size(), " images, fewer than one batch of ", batch_size,
              shard.count > 1 ? c10::str(" per rank x ", shard.count, " ranks") : std::string(),
              "; use a smaller --batch-size");
}

BatchLoader::~BatchLoader() {
  if (pending_.valid())
    pending_.wait();
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t size = images_.size(0);
  const int64_t global_batch = batch_size_ * shard_.count;
  return drop_last_ ? size / global_batch : (size + global_batch - 1) / global_batch;
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  if (pending_.valid())
    pending_.wait();
  pending_ = {};
  epoch_ = epoch;
  next_batch_ = first_batch;
  order_.resize(images_.size(0));
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) {
    std::mt19937_64 rng(mix({seed_, static_cast<uint64_t>(epoch), 1}));
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  prefetch();
}

void BatchLoader::prefetch() {
  if (next_batch_ >= batches_per_epoch())
    return;
  const int64_t index = next_batch_++;
  pending_ = std::async(std::launch::async, [this, index] { return assemble(index); });
}

std::optional<Batch> BatchLoader::next() {
  if (!pending_.valid())
    return std::nullopt;
  Batch batch = pending_.get();
  prefetch();
  return batch;
}

Batch BatchLoader::assemble(int64_t batch_index) const {
  const int64_t begin = (batch_index * shard_.count + shard_.index) * batch_size_;
  const int64_t count = std::min(batch_size_, images_.size(0) - begin);
  const int64_t channels = images_.size(1), height = images_.size(2), width = images_.size(3);
  const int64_t pixels = height * width;
  Batch batch{torch::empty({count, channels, height, width}, torch::kFloat32),
              torch::empty({count}, torch::kLong)};
  const auto* bytes = images_.data_ptr<uint8_t>();
  const auto* labels = labels_.data_ptr<int64_t>();
  auto* out = batch.images.data_ptr<float>();
  auto* out_labels = batch.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t sample = order_[begin + i];
    float* image = out + i * channels * pixels;
    const uint8_t* stored = bytes + sample * channels * pixels;
    for (int64_t p = 0; p < channels * pixels; ++p)
      image[p] = stored[p] / 255.0f;
    if (augmentation_) {
      std::mt19937_64 rng(
          mix({seed_, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(sample), 2}));
      augment_image(image, channels, height, width, *augmentation_, rng);
    }
    for (int64_t c = 0; c < channels; ++c) {
      const auto mean = static_cast<float>(normalization_.mean[c]);
      const auto inverse_std = static_cast<float>(1.0 / normalization_.std[c]);
      for (int64_t p = 0; p < pixels; ++p)
        image[c * pixels + p] = (image[c * pixels + p] - mean) * inverse_std;
    }
    out_labels[i] = labels[sample];
  }
  if (native_sizes_.largest > 0) {
    const int64_t step = native_sizes_.step;
    const auto [first, last] = native_side_steps(native_sizes_);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t sample = order_[begin + i];
      std::mt19937_64 rng(
          mix({seed_, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(sample), 4}));
      std::uniform_int_distribution<int64_t> side(first, last);
      const int64_t rows = side(rng) * step;
      const int64_t columns = side(rng) * step;
      batch.sized_images.push_back(
          resize_images(batch.images.narrow(0, i, 1), rows, columns).squeeze(0));
    }
  }
  if (!resolutions_.empty()) {
    std::mt19937_64 rng(
        mix({seed_, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(batch_index), 3}));
    batch.resolution =
        resolutions_[std::uniform_int_distribution<size_t>(0, resolutions_.size() - 1)(rng)];
  }
  return batch;
}

}  // namespace posenc
