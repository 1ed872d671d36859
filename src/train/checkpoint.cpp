#include "posenc/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include "interop/pickle_framing.h"
#include "train/adamw_state.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;
constexpr const char* kFormat = "posenc-checkpoint-1";

// Flushes a file (or folder) to disk, so a rename after it cannot expose a half-written file.
void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return;
  const int result = ::fsync(fd);
  ::close(fd);
  TORCH_CHECK(result == 0, "cannot flush ", path, " to disk (", std::strerror(errno),
              "); is the disk full?");
}

// Writes `bytes` to `path` and flushes them to disk; throws on any failure (e.g. a full disk).
void write_file_durably(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TORCH_CHECK(fd >= 0, "cannot create ", path, " (", std::strerror(errno), ")");
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t result = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (result < 0 && errno == EINTR)
      continue;
    if (result <= 0) {
      const int error = errno;
      ::close(fd);
      TORCH_CHECK(false, "writing ", path, " failed after ", written, " of ", bytes.size(),
                  " bytes (", std::strerror(error), ")");
    }
    written += static_cast<size_t>(result);
  }
  const bool synced = ::fsync(fd) == 0;
  const int error = errno;
  TORCH_CHECK(::close(fd) == 0 && synced, "flushing ", path, " to disk failed (",
              std::strerror(error), ")");
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_identifier(const std::string& text) {
  return !text.empty() && (std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_') &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
         });
}

// A TorchScript type as archives spell them: Tensor, int, Tuple[float, float],
// __torch__.___torch_mangle_3.Module.
bool is_type(const std::string& text) {
  int depth = 0;
  for (const char c : text) {
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      if (--depth < 0)
        return false;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != ',' &&
               c != ' ') {
      return false;
    }
  }
  return depth == 0 && !text.empty() &&
         (std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_');
}

// ["a", "b", ] or []
bool is_name_list(const std::string& text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']')
    return false;
  size_t at = 1;
  while (at + 1 < text.size()) {
    if (text[at] != '"')
      return false;
    const auto close = text.find('"', at + 1);
    if (close == std::string::npos || text.compare(close, 3, "\", ") != 0 ||
        text.find('\\', at) < close)
      return false;
    at = close + 3;
  }
  return at + 1 == text.size();
}

// One line of the class definitions a torch::serialize archive carries in code/*.py.
bool is_archive_code_line(const std::string& line) {
  if (line.empty())
    return true;
  if (line.rfind("class ", 0) == 0)
    return ends_with(line, "(Module):") &&
           is_identifier(line.substr(6, line.size() - 6 - std::string("(Module):").size()));
  if (line.rfind("  ", 0) != 0)
    return false;
  const std::string body = line.substr(2);
  for (const char* list : {"__parameters__ = ", "__buffers__ = "}) {
    if (body.rfind(list, 0) == 0)
      return is_name_list(body.substr(std::string(list).size()));
  }
  if (body == "__annotations__ = []")
    return true;
  if (body.rfind("__annotations__[\"", 0) == 0) {
    const auto close = body.find("\"] = ");
    return close != std::string::npos && body.find_first_of("\"\\", 17) == close &&
           is_type(body.substr(close + 5));
  }
  const auto colon = body.find(" : ");
  return colon != std::string::npos && is_identifier(body.substr(0, colon)) &&
         is_type(body.substr(colon + 3));
}

// Checks what LibTorch parses before it parses it: the framing of every pickle (see
// check_pickle_framing: a corrupt length makes LibTorch allocate gigabytes first), and that the
// TorchScript class definitions hold only the lines a torch::serialize archive writes (found by
// fuzzing: LibTorch 1.13's parser dereferences a wild pointer on an unknown class attribute such
// as `__barameters__ = [...]`). Both screens were checked again on LibTorch 2.13: without them,
// one corrupt pickle length still costs 12 s and 4.3 GB before 2.13's reader gives up, while the
// two class-code inputs now end in a parse error instead of a crash; the code screen stays as
// defence in depth, since the TorchScript parser was not written for untrusted input.
void check_archive_pickles(const CheckpointBytes& checkpoint) {
  std::istringstream stream(checkpoint.bytes);
  caffe2::serialize::PyTorchStreamReader reader(&stream);
  for (const auto& record : reader.getAllRecords()) {
    const bool pickle = ends_with(record, ".pkl");
    const bool code = ends_with(record, ".py") && record.find("code/") != std::string::npos;
    if (!pickle && !code)
      continue;
    const auto [data, size] = reader.getRecord(record);
    const std::string bytes(static_cast<const char*>(data.get()), size);
    if (pickle) {
      check_pickle_framing(bytes, checkpoint.name + " (" + record + ")");
      continue;
    }
    std::istringstream lines(bytes);
    int64_t number = 0;
    for (std::string line; std::getline(lines, line);) {
      ++number;
      TORCH_CHECK(is_archive_code_line(line), checkpoint.name, " is corrupt: its archive code (",
                  record, ") has an unexpected line ", number);
    }
  }
}

torch::serialize::InputArchive open_archive(const CheckpointBytes& checkpoint) {
  const std::string& path = checkpoint.name;
  torch::serialize::InputArchive archive;
  try {
    check_archive_pickles(checkpoint);
    std::istringstream stream(checkpoint.bytes);
    archive.load_from(stream);
  } catch (const c10::Error& error) {
    TORCH_CHECK(false, path, " is not a readable posenc checkpoint (truncated or another format): ",
                error.what_without_backtrace());
  } catch (const std::exception&) {
    // LibTorch's loader also throws torch::jit::ErrorReport (found by fuzzing), whose message
    // is a TorchScript parse trace of no use here
    TORCH_CHECK(false, path,
                " is not a readable posenc checkpoint (corrupt: its TorchScript "
                "archive does not parse)");
  }
  c10::IValue format;
  TORCH_CHECK(
      archive.try_read("format", format) && format.isString() && format.toStringRef() == kFormat,
      path, " is not a posenc checkpoint (no '", kFormat, "' marker)");
  return archive;
}

std::string describe(const torch::Tensor& tensor) {
  return c10::str(tensor.sizes(), " ", tensor.scalar_type());
}

// The key of rank r's generator state (rank 0's keeps the name of single-process checkpoints).
std::string rng_state_key(size_t rank) {
  return rank == 0 ? "progress.rng_state" : "progress.rng_state.rank" + std::to_string(rank);
}

}  // namespace

CheckpointBytes CheckpointBytes::read(const std::string& path) {
  TORCH_CHECK(fs::is_regular_file(path), "checkpoint ", path, " does not exist");
  std::ifstream file(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << file.rdbuf();
  TORCH_CHECK(file.good() || file.eof(), "cannot read checkpoint ", path);
  return {path, bytes.str()};
}

void save_checkpoint(const std::string& path, const nlohmann::json& config,
                     const torch::nn::Module& model, const torch::optim::Optimizer* optimizer,
                     const TrainingProgress& progress) {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("config", c10::IValue(config.dump()));
  for (const auto& item : model.named_parameters())
    archive.write("model." + item.key(), item.value());
  for (const auto& item : model.named_buffers())
    archive.write("model." + item.key(), item.value(), true);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("progress.epoch", c10::IValue(progress.epoch));
  archive.write("progress.batch_in_epoch", c10::IValue(progress.batch_in_epoch));
  archive.write("progress.global_step", c10::IValue(progress.global_step));
  archive.write("progress.epoch_loss_sum", c10::IValue(progress.epoch_loss_sum));
  archive.write("progress.epoch_correct", c10::IValue(progress.epoch_correct));
  archive.write("progress.epoch_images", c10::IValue(progress.epoch_images));
  archive.write("progress.elapsed_seconds", c10::IValue(progress.elapsed_seconds));
  archive.write("progress.epoch_started_at", c10::IValue(progress.epoch_started_at));
  archive.write("progress.world_size", c10::IValue(progress.world_size));
  for (size_t rank = 0; rank < progress.rng_states.size(); ++rank)
    archive.write(rng_state_key(rank), progress.rng_states[rank], true);

  // Serialised in memory first: LibTorch's file writer terminates the process when a write fails
  // (its destructor throws again), so posenc writes the bytes itself and can report a full disk.
  std::ostringstream bytes;
  archive.save_to(bytes);
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // appended, not "." + name: GCC 12 warns falsely (-Wstringop-overflow) on that form in C++20
  std::string hidden_name = ".";
  hidden_name += target.filename().string();
  hidden_name += ".tmp";
  const std::string temporary = (folder / hidden_name).string();
  try {
    write_file_durably(temporary, bytes.str());
    fs::rename(temporary, target);
    sync_to_disk(folder.string());
  } catch (const std::exception& error) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    const auto* torch_error = dynamic_cast<const c10::Error*>(&error);
    TORCH_CHECK(false, "could not write checkpoint ", path, ": ",
                torch_error ? torch_error->what_without_backtrace() : error.what(),
                ". The previous checkpoint, if any, is unchanged; free disk space or choose "
                "another --out folder");
  }
}

nlohmann::json read_checkpoint_config(const std::string& path) {
  return read_checkpoint_config(CheckpointBytes::read(path));
}

nlohmann::json read_checkpoint_config(const CheckpointBytes& checkpoint) {
  const std::string& path = checkpoint.name;
  auto archive = open_archive(checkpoint);
  c10::IValue config;
  TORCH_CHECK(archive.try_read("config", config) && config.isString(), path,
              " has no run configuration");
  try {
    return nlohmann::json::parse(config.toStringRef());
  } catch (const nlohmann::json::exception& error) {
    TORCH_CHECK(false, path, ": its configuration is not valid JSON: ", error.what());
  }
}

void load_model_tensors(const std::string& path, torch::nn::Module& model) {
  load_model_tensors(CheckpointBytes::read(path), model);
}

void load_model_tensors(const CheckpointBytes& checkpoint, torch::nn::Module& model) {
  const std::string& path = checkpoint.name;
  auto archive = open_archive(checkpoint);
  std::string mismatches;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> assignments;  // (target, stored)
  std::set<std::string> expected;
  auto collect = [&](const std::string& name, const torch::Tensor& target, bool is_buffer) {
    const std::string key = "model." + name;
    expected.insert(key);
    torch::Tensor stored;
    if (!archive.try_read(key, stored, is_buffer)) {
      mismatches += c10::str("\n  missing in checkpoint: ", name, " ", describe(target));
    } else if (stored.sizes() != target.sizes()) {
      mismatches += c10::str("\n  shape differs: ", name, " is ", describe(stored),
                             " in the checkpoint but ", describe(target), " in the model");
    } else {
      assignments.emplace_back(target, stored);
    }
  };
  for (const auto& item : model.named_parameters())
    collect(item.key(), item.value(), false);
  for (const auto& item : model.named_buffers())
    collect(item.key(), item.value(), true);
  for (const auto& key : archive.keys()) {
    if (key.rfind("model.", 0) == 0 && expected.count(key) == 0) {
      mismatches += "\n  not in the model: " + key.substr(6);
    }
  }
  TORCH_CHECK(mismatches.empty(), path,
              " does not fit this model configuration; mismatched tensors:", mismatches);
  {
    torch::NoGradGuard no_grad;
    for (auto& [target, stored] : assignments)
      target.copy_(stored);
  }
}

TrainingProgress load_training_state(const std::string& path, torch::optim::AdamW& optimizer) {
  return load_training_state(CheckpointBytes::read(path), optimizer);
}

TrainingProgress load_training_state(const CheckpointBytes& checkpoint,
                                     torch::optim::AdamW& optimizer) {
  const std::string& path = checkpoint.name;
  auto archive = open_archive(checkpoint);
  torch::serialize::InputArchive optimizer_archive;
  TORCH_CHECK(archive.try_read("optimizer", optimizer_archive), path,
              " has no optimiser state to resume from");
  load_adamw_state(optimizer_archive, optimizer, path);
  return read_training_progress(checkpoint);
}

TrainingProgress read_training_progress(const CheckpointBytes& checkpoint) {
  const std::string& path = checkpoint.name;
  auto archive = open_archive(checkpoint);
  TrainingProgress progress;
  c10::IValue value;
  auto read_int = [&](const char* key) {
    TORCH_CHECK(archive.try_read(key, value), path, " lacks ", key);
    return value.toInt();
  };
  auto read_double = [&](const char* key) {
    TORCH_CHECK(archive.try_read(key, value), path, " lacks ", key);
    return value.toDouble();
  };
  progress.epoch = read_int("progress.epoch");
  progress.batch_in_epoch = read_int("progress.batch_in_epoch");
  progress.global_step = read_int("progress.global_step");
  progress.epoch_loss_sum = read_double("progress.epoch_loss_sum");
  progress.epoch_correct = read_int("progress.epoch_correct");
  progress.epoch_images = read_int("progress.epoch_images");
  progress.elapsed_seconds = read_double("progress.elapsed_seconds");
  progress.epoch_started_at = read_double("progress.epoch_started_at");
  // written before data-parallel training existed: one process
  if (archive.try_read("progress.world_size", value))
    progress.world_size = value.toInt();
  TORCH_CHECK(progress.world_size >= 1, path, " has an invalid world size ", progress.world_size);
  torch::Tensor rng;
  for (size_t rank = 0; archive.try_read(rng_state_key(rank), rng, true); ++rank)
    progress.rng_states.push_back(rng);
  return progress;
}

}  // namespace posenc
