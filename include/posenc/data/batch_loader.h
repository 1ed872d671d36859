#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "posenc/data/augmentation.h"
#include "posenc/data/image_dataset.h"

namespace posenc {

// Per-channel normalisation applied to images scaled to [0, 1].
struct Normalization {
  std::vector<double> mean;
  std::vector<double> std;

  // The mean and standard deviation of each channel over a whole data set.
  static Normalization measure(const ImageDataset& dataset);
};

struct Batch {
  torch::Tensor images;    // (B, C, H, W) float32, normalised, at the data set's size
  torch::Tensor labels;    // (B) int64
  int64_t resolution = 0;  // multi-scale: the square size to train this batch at; 0 = as is
  // native sizes: each image resized to its own size, (C, H_b, W_b) each; empty otherwise
  std::vector<torch::Tensor> sized_images;
};

// Native-resolution batches: each image resized to its own height and width, drawn uniformly
// from the multiples of `step` in [smallest, largest] (each side on its own). Off when
// largest == 0.
struct NativeSizes {
  int64_t smallest = 0;
  int64_t largest = 0;
  int64_t step = 1;
};

// One rank's part of a data-parallel run: each global batch of batch_size x count samples is
// split into `count` consecutive slices and rank `index` takes slice `index`, so the ranks
// together see exactly the batches one process with a `count` times larger batch would.
struct Shard {
  int64_t index = 0;
  int64_t count = 1;
};

// Serves a data set in batches, in a seeded order, with optional augmentation, preparing the
// next batch on a background thread while the caller computes on the current one.
// Order, augmentation, each batch's resolution (multi-scale training: one of `resolutions`) and
// each image's own size (native sizes) depend only on (seed, epoch, sample or batch index), so an
// epoch resumed at any batch sees exactly the batches an uninterrupted run would, and the order
// does not depend on the shard.
class BatchLoader {
 public:
  BatchLoader(const ImageDataset& dataset, int64_t batch_size, bool shuffle, bool drop_last,
              std::optional<AugmentationOptions> augmentation, Normalization normalization,
              uint64_t seed, std::vector<int64_t> resolutions = {}, Shard shard = {},
              NativeSizes native_sizes = {});
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Global batches per epoch (every shard serves one slice of each).
  int64_t batches_per_epoch() const;
  // Begins `epoch` at batch `first_batch` (to resume mid-epoch).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or nothing at its end.
  std::optional<Batch> next();

 private:
  Batch assemble(int64_t batch_index) const;
  void prefetch();

  // the data set's tensors, made contiguous once so the loader thread can read raw pointers
  torch::Tensor images_;  // (N, C, H, W) uint8
  torch::Tensor labels_;  // (N) int64
  int64_t batch_size_;
  bool shuffle_;
  bool drop_last_;
  std::optional<AugmentationOptions> augmentation_;
  Normalization normalization_;
  uint64_t seed_;
  std::vector<int64_t> resolutions_;
  Shard shard_;
  NativeSizes native_sizes_;
  int64_t epoch_ = 0;
  int64_t next_batch_ = 0;
  std::vector<int64_t> order_;
  std::future<Batch> pending_;
};

}  // namespace posenc
