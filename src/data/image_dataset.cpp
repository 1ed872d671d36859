#include "posenc/data/image_dataset.h"

#include <algorithm>
#include <cctype>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

void ImageDataset::validate() const {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8, source,
              ": images must be uint8 (N, C, H, W), got ", images.scalar_type(), " ",
              images.sizes());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), source, ": ", images.size(0),
              " images but ", labels.numel(), " labels");
  TORCH_CHECK(images.size(0) > 0, source, ": the data set is empty");
  TORCH_CHECK(classes() >= 2, source, ": need at least 2 classes, got ", classes());
  const auto low = labels.min().item<int64_t>();
  const auto high = labels.max().item<int64_t>();
  TORCH_CHECK(low >= 0 && high < classes(), source, ": labels must lie in [0, ", classes() - 1,
              "], found values from ", low, " to ", high);
}

ImageDataset ImageDataset::part(int64_t index, int64_t count) const {
  TORCH_CHECK(count >= 1 && index >= 0 && index < count, "part ", index, " of ", count,
              " does not exist");
  const int64_t begin = size() * index / count;
  const int64_t end = size() * (index + 1) / count;
  return {images.narrow(0, begin, end - begin), labels.narrow(0, begin, end - begin), class_names,
          c10::str(source, " (part ", index + 1, " of ", count, ")"), changes};
}

ImageDataset ImageDataset::class_balanced_subset(int64_t count) const {
  TORCH_CHECK(count >= 1 && count <= size(), source, ": a subset of ", count,
              " images was asked for, but the data set has ", size(), "; choose a size from 1 to ",
              size());
  // Quotas by water-filling: raise a common per-class cap until `count` images fit under it.
  const auto per_class = torch::bincount(labels, /*weights=*/{}, classes());
  const auto available = std::vector<int64_t>(per_class.data_ptr<int64_t>(),
                                              per_class.data_ptr<int64_t>() + classes());
  std::vector<int64_t> quota(available.size(), 0);
  int64_t taken = 0;
  while (taken < count) {
    for (size_t c = 0; c < quota.size() && taken < count; ++c) {
      if (quota[c] < available[c]) {
        ++quota[c];
        ++taken;
      }
    }
  }
  std::vector<int64_t> chosen;
  chosen.reserve(static_cast<size_t>(count));
  const auto contiguous_labels = labels.contiguous();
  const auto* label = contiguous_labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < size(); ++i) {
    auto& left = quota[static_cast<size_t>(label[i])];
    if (left > 0) {
      --left;
      chosen.push_back(i);
    }
  }
  const auto index = torch::tensor(chosen, torch::kInt64);
  return {images.index_select(0, index), labels.index_select(0, index), class_names,
          c10::str(source, " (class-balanced subset of ", count, ")"), changes};
}

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names)
    text += (text.empty() ? "" : ", ") + name;
  return text;
}

std::string lower_case(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

void check_same_classes(const ImageDataset& train, const ImageDataset& test) {
  TORCH_CHECK(test.channels() == train.channels() && test.classes() == train.classes(),
              "test data (", test.channels(), " channels, ", test.classes(),
              " classes) does not match training data (", train.channels(), " channels, ",
              train.classes(), " classes)");
  if (test.class_names == train.class_names)
    return;
  std::vector<std::string> train_lower, test_lower;
  for (const auto& name : train.class_names)
    train_lower.push_back(lower_case(name));
  for (const auto& name : test.class_names)
    test_lower.push_back(lower_case(name));
  std::sort(train_lower.begin(), train_lower.end());
  std::sort(test_lower.begin(), test_lower.end());
  TORCH_CHECK(false, "the test classes (", joined(test.class_names), ", from ", test.source,
              ") are not the training classes (", joined(train.class_names), ", from ",
              train.source, "): each label would be scored as another class",
              train_lower == test_lower ? "; the names differ in case only, and class folders "
                                          "are told apart and ordered case-sensitively"
                                        : "",
              "; give the test split the same class folders as the training split");
}

}  // namespace posenc
