#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace posenc {

// A labelled image set held in memory as bytes, as loaded from disk.
struct ImageDataset {
  torch::Tensor images;  // (N, C, H, W) uint8
  torch::Tensor labels;  // (N) int64, each in [0, class_names.size())
  std::vector<std::string> class_names;
  std::string source;  // where it was loaded from, for messages
  // What loading changed, said when a run starts (image folders: channels converted, images
  // resized, e.g. "12 of 40 read as 1 channel (stored with 3), 40 of 40 resized to 28x28 (from
  // 17x23 up to 640x480)");
  // empty when nothing was.
  std::string changes;

  int64_t size() const { return images.size(0); }
  int64_t classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
  // Consecutive part `index` of `count` near-equal parts (evaluation split over ranks); may be
  // empty when there are more parts than images. Shares memory with this data set.
  ImageDataset part(int64_t index, int64_t count) const;
  // The first images of each class in stored order, `count` in all, split as evenly over the
  // classes as they allow (a class with too few images gives all it has and the others fill up).
  // The choice depends only on the data, so every run that asks for it trains on the same images.
  // count in [1, size()]
  ImageDataset class_balanced_subset(int64_t count) const;
  // Throws unless images and labels agree in count and every label is a valid class.
  void validate() const;
};

// Throws unless `test` has the channels and the classes of `train`, by name where both have
// names (image folders): a label is an index into the class names, so test/{apple,zebra} beside
// train/{circle,stripes}, or test/{cat,dog} beside train/{Dog,cat}, would score against the
// wrong classes.
void check_same_classes(const ImageDataset& train, const ImageDataset& test);

}  // namespace posenc
