#include "posenc/interop/torch_save_files.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "interop/torch_save_unpickler.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;

// What a pickled value is, in Python's words, with its article.
std::string type_name(const c10::IValue& value) {
  if (value.isTensor())
    return "a tensor";
  if (value.isGenericDict())
    return "a dict";
  if (value.isList())
    return "a list";
  if (value.isTuple())
    return "a tuple";
  if (value.isString())
    return "a string";
  if (value.isNone())
    return "None";
  if (value.isBool())
    return "a bool";
  return value.isInt() ? "an integer" : value.isDouble() ? "a number" : "a " + value.tagKind();
}

// torch.save's zip archive: the pickle in data.pkl, each storage in data/<key>.
c10::IValue unpickle_archive(caffe2::serialize::PyTorchStreamReader& archive) {
  const auto [data, size] = archive.getRecord("data.pkl");
  const std::string pickle(static_cast<const char*>(data.get()), size);
  return unpickle_torch_save(pickle, [&](const std::string& key) {
    TORCH_CHECK(archive.hasRecord("data/" + key), "the archive lacks storage data/", key);
    auto [storage, bytes] = archive.getRecord("data/" + key);
    return std::make_pair(std::move(storage), bytes);
  });
}

// An exception's message, without LibTorch's C++ backtrace.
std::string message_without_backtrace(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  return c10_error != nullptr ? c10_error->what_without_backtrace() : error.what();
}

c10::IValue read_torch_save_file(const std::string& path) {
  TORCH_CHECK(fs::is_regular_file(path), path, " does not exist");
  std::ifstream file(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)), {});
  TORCH_CHECK(!bytes.empty(), path, " is empty");
  // zip archives start with "PK"; torch.save's legacy format with a pickle protocol byte
  TORCH_CHECK(bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] == 'K', path,
              " is not a torch.save file in the zip format (PyTorch >= 1.6's default). If it was "
              "saved with _use_new_zipfile_serialization=False, load and save it again with "
              "torch.save(torch.load(f), f)");
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> archive;
  try {
    archive = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& error) {
    TORCH_CHECK(false, path, " cannot be read as a torch.save file (truncated or corrupt?): ",
                message_without_backtrace(error));
  }
  // TorchScript archives (torch.jit.save, and posenc's own checkpoints) carry their code and
  // constants beside data.pkl; torch.save files of weights do not
  bool scripted = archive->hasRecord("constants.pkl");
  for (const auto& record : archive->getAllRecords())
    scripted = scripted || record.rfind("code/", 0) == 0;
  TORCH_CHECK(!scripted, path,
              " is a TorchScript archive (torch.jit.save, or a posenc checkpoint, which posenc's "
              "commands take as --checkpoint), not a torch.save file of weights; in Python, "
              "save the weights with torch.save(model.state_dict(), f)");
  try {
    return unpickle_archive(*archive);
  } catch (const std::exception& error) {
    const std::string reason = message_without_backtrace(error);
    // torch.save(model) pickles the module: its class, not only tensors
    TORCH_CHECK(reason.find("the pickle builds a ") == std::string::npos, path,
                " is a torch.save file of Python objects, not of weights (", reason,
                "); torch.save(model) stores the module's class: save the weights with "
                "torch.save(model.state_dict(), f)");
    TORCH_CHECK(false, path, " cannot be read as a torch.save file (truncated or corrupt?): ",
                reason);
  }
}

// torch.save's zip format, as torch::pickle_save writes it but without the type tags it adds to
// every dict (calls of torch.jit._pickle.restore_type_tag): since PyTorch 2.6 torch.load refuses
// any such call by default (weights_only=True), and a state dict needs none.
std::vector<char> pickle_for_torch_load(const c10::IValue& value) {
  std::vector<char> pickle;
  torch::jit::Pickler pickler(
      [&](const char* bytes, size_t size) { pickle.insert(pickle.end(), bytes, bytes + size); },
      nullptr, nullptr, nullptr, nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::vector<char> archive;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t size) {
    const auto* first = static_cast<const char*>(bytes);
    archive.insert(archive.end(), first, first + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(),
                                     writer);
  writer.writeEndOfFile();
  return archive;
}

// Written to a temporary file and renamed: a failure leaves no half-written file behind.
void write_torch_save_file(const std::string& path, const c10::IValue& value) {
  const std::vector<char> bytes = pickle_for_torch_load(value);
  const fs::path target(path);
  // appended, not "." + name: GCC 12 warns falsely (-Wstringop-overflow) on that form in C++20
  std::string hidden_name = ".";
  hidden_name += target.filename().string();
  hidden_name += ".tmp";
  const fs::path temporary = target.parent_path() / hidden_name;
  {
    std::ofstream file(temporary, std::ios::binary);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    file.flush();
    TORCH_CHECK(file.good(), "cannot write ", path, " (unwritable folder or full disk?)");
  }
  std::error_code error;
  fs::rename(temporary, target, error);
  TORCH_CHECK(!error, "cannot write ", path, ": ", error.message());
}

}  // namespace

StateDict read_torch_state_dict(const std::string& path) {
  const c10::IValue value = read_torch_save_file(path);
  TORCH_CHECK(value.isGenericDict(), path, " holds ", type_name(value),
              ", not a state dict (a dict of tensor names to tensors)");
  auto dict = value.toGenericDict();
  for (const char* wrapper : {"model", "state_dict", "module"}) {
    const auto found = dict.find(c10::IValue(std::string(wrapper)));
    if (found != dict.end() && found->value().isGenericDict()) {
      dict = found->value().toGenericDict();
      break;
    }
  }
  StateDict state;
  for (const auto& item : dict) {
    TORCH_CHECK(item.key().isString(), path, ": a state dict key is ", type_name(item.key()),
                ", not a string");
    const std::string& name = item.key().toStringRef();
    TORCH_CHECK(item.value().isTensor(), path, ": '", name, "' is ", type_name(item.value()),
                ", not a tensor; this is not a state dict");
    state[name] = item.value().toTensor();
  }
  TORCH_CHECK(!state.empty(), path, " holds an empty dict, not a state dict");
  return state;
}

void write_torch_state_dict(const std::string& path, const StateDict& state) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, tensor] : state)
    dict.insert(name, tensor.contiguous());
  write_torch_save_file(path, dict);
}

torch::Tensor read_torch_tensor(const std::string& path) {
  const c10::IValue value = read_torch_save_file(path);
  TORCH_CHECK(value.isTensor(), path, " holds ", type_name(value),
              ", not a tensor; save one with torch.save(tensor, path)");
  return value.toTensor();
}

void write_torch_tensor(const std::string& path, const torch::Tensor& tensor) {
  write_torch_save_file(path, tensor.contiguous());
}

}  // namespace posenc
