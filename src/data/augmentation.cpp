#include "posenc/data/augmentation.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <c10/util/Exception.h>

#include "core/json_keys.h"

namespace posenc {
namespace {

// Bilinear sample of plane p at real coordinates (y, x), zero outside.
float sample_bilinear(const float* plane, int64_t height, int64_t width, double y, double x) {
  const auto y0 = static_cast<int64_t>(std::floor(y));
  const auto x0 = static_cast<int64_t>(std::floor(x));
  const double fy = y - y0, fx = x - x0;
  auto at = [&](int64_t yy, int64_t xx) -> double {
    yy = std::clamp<int64_t>(yy, 0, height - 1);
    xx = std::clamp<int64_t>(xx, 0, width - 1);
    return plane[yy * width + xx];
  };
  return static_cast<float>((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
                            fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)));
}

void random_resized_crop(float* image, int64_t channels, int64_t height, int64_t width,
                         double min_scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> scale(min_scale, 1.0);
  std::uniform_real_distribution<double> log_ratio(std::log(3.0 / 4.0), std::log(4.0 / 3.0));
  const double area = scale(rng) * static_cast<double>(height * width);
  const double ratio = std::exp(log_ratio(rng));
  const double crop_w = std::min<double>(width, std::sqrt(area * ratio));
  const double crop_h = std::min<double>(height, std::sqrt(area / ratio));
  std::uniform_real_distribution<double> top(0.0, height - crop_h), left(0.0, width - crop_w);
  const double y0 = top(rng), x0 = left(rng);
  std::vector<float> source(image, image + channels * height * width);
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = source.data() + c * height * width;
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        // centre of output pixel (y, x) mapped into the crop, in source pixel coordinates
        const double sy = y0 + (y + 0.5) * crop_h / height - 0.5;
        const double sx = x0 + (x + 0.5) * crop_w / width - 0.5;
        image[(c * height + y) * width + x] = sample_bilinear(plane, height, width, sy, sx);
      }
    }
  }
}

void random_padded_crop(float* image, int64_t channels, int64_t height, int64_t width,
                        int64_t padding, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> shift(-padding, padding);
  const int64_t dy = shift(rng), dx = shift(rng);
  std::vector<float> source(image, image + channels * height * width);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        const int64_t sy = y + dy, sx = x + dx;
        const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        image[(c * height + y) * width + x] =
            inside ? source[(c * height + sy) * width + sx] : 0.0f;
      }
    }
  }
}

void horizontal_flip(float* image, int64_t channels, int64_t height, int64_t width) {
  for (int64_t row = 0; row < channels * height; ++row) {
    std::reverse(image + row * width, image + (row + 1) * width);
  }
}

}  // namespace

void AugmentationOptions::validate() const {
  TORCH_CHECK(resized_crop_min_scale == 0.0 ||
                  (resized_crop_min_scale > 0.0 && resized_crop_min_scale <= 1.0),
              "random resized crop minimum scale must be in (0, 1], or 0 to disable it; got ",
              resized_crop_min_scale);
  TORCH_CHECK(crop_padding >= 0, "crop padding must be >= 0, got ", crop_padding);
  TORCH_CHECK(horizontal_flip >= 0.0 && horizontal_flip <= 1.0,
              "horizontal flip probability must be in [0, 1], got ", horizontal_flip);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AugmentationOptions, resized_crop_min_scale,
                                                crop_padding, horizontal_flip)

nlohmann::json AugmentationOptions::to_json() const {
  return nlohmann::json(*this);
}

AugmentationOptions AugmentationOptions::from_json(const nlohmann::json& json) {
  auto options = read_options_json<AugmentationOptions>(json, "augmentation");
  options.validate();
  return options;
}

void augment_image(float* image, int64_t channels, int64_t height, int64_t width,
                   const AugmentationOptions& options, std::mt19937_64& rng) {
  if (options.resized_crop_min_scale > 0.0) {
    random_resized_crop(image, channels, height, width, options.resized_crop_min_scale, rng);
  }
  if (options.crop_padding > 0) {
    random_padded_crop(image, channels, height, width, options.crop_padding, rng);
  }
  std::bernoulli_distribution flip(options.horizontal_flip);
  if (flip(rng))
    horizontal_flip(image, channels, height, width);
}

}  // namespace posenc
