#include "test_data_flags.h"

#include <c10/util/Exception.h>

#include "argument_parsing.h"
#include "pad_to_patch_flag.h"

namespace posenc::cli {

void add_test_data_flags(CLI::App& command, TestDataFlags& flags,
                         const std::string& stored_default) {
  const std::string group = "Test data (default: " + stored_default + ")";
  command.add_option("--data", flags.kind, "fashion-mnist, idx or folder")->group(group);
  command
      .add_option("--data-dir", flags.directory,
                  "fashion-mnist: folder of the .gz files; folder: root with test/ (one folder "
                  "per class, in the model's class order)")
      ->group(group);
  command.add_option("--test-images", flags.test_images, "idx: test images file")->group(group);
  command.add_option("--test-labels", flags.test_labels, "idx: test labels file")->group(group);
  command
      .add_option("--channels", flags.channels,
                  "folder: read images with 1 or 3 channels (default: the model's)")
      ->group(group);
}

void apply_test_data_flags(RunConfig& config, const TestDataFlags& flags,
                           const CLI::App& command) {
  auto given = [&](const char* flag) { return command.count(flag) > 0; };
  DataSource& data = config.data;
  if (given("--data") && flags.kind != data.kind) {
    data = DataSource{};  // what the checkpoint recorded was for another kind of data
    data.kind = flags.kind;
    data.channels = config.model.image_channels;
  }
  if (given("--data-dir"))
    data.directory = flags.directory;
  if (given("--test-images"))
    data.test_images = flags.test_images;
  if (given("--test-labels"))
    data.test_labels = flags.test_labels;
  if (given("--channels"))
    data.channels = flags.channels;
  if (data.kind == "folder") {
    data.height = config.model.image_height;
    data.width = config.model.image_width;
  }
  data = data.with_absolute_paths();
}

ModelAndImages model_and_test_images(const std::string& checkpoint, const std::string& resolution,
                                     int64_t count, bool pad_to_patch,
                                     const TestDataFlags& flags, const CLI::App& command) {
  ModelAndImages result{load_trained_model(checkpoint), {}};
  apply_test_data_flags(result.trained.config, flags, command);
  const auto& options = result.trained.model->options();
  const auto [height, width] = parse_single_resolution(
      resolution, {options.image_height, options.image_width}, "--resolution");
  prepare_image_sizes(result.trained.model, pad_to_patch, {{height, width}});
  result.images = result.trained.first_test_images(count, height, width);
  return result;
}

}  // namespace posenc::cli
