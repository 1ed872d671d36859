#pragma once

#include <cstdint>
#include <random>

#include <nlohmann/json.hpp>

namespace posenc {

// Augmentations for small images, applied per image at its stored resolution.
struct AugmentationOptions {
  // Random resized crop: a region of area fraction in [min_scale, 1] and aspect ratio in
  // [3/4, 4/3] is cut out and resized back to the full size; 0 disables it.
  double resized_crop_min_scale = 0.0;
  // Random crop after zero-padding each side by this many pixels (0 disables it).
  int64_t crop_padding = 2;
  // Probability of a horizontal flip (0 for digit-like data, where a flip changes the class).
  double horizontal_flip = 0.5;

  void validate() const;
  nlohmann::json to_json() const;
  static AugmentationOptions from_json(const nlohmann::json& json);
};

// Augments one image in place. image: C planes of height x width floats, contiguous.
void augment_image(float* image, int64_t channels, int64_t height, int64_t width,
                   const AugmentationOptions& options, std::mt19937_64& rng);

}  // namespace posenc
