#pragma once

#include <map>
#include <string>

#include <torch/types.h>

namespace posenc {

// Files in the format of Python's torch.save, read and written with LibTorch's pickler.

// A PyTorch state dict: tensor names (as Python's module.state_dict() writes them) to tensors.
using StateDict = std::map<std::string, torch::Tensor>;

// Reads a file written by Python's torch.save (the zip format, PyTorch >= 1.6's default) with
// torch::pickle_load. Accepts a dict of tensors, or a checkpoint dict holding one under "model",
// "state_dict" or "module" (DeiT, timm and Lightning checkpoints). Throws, naming the file and
// what was wrong, for a missing, truncated or legacy-format file, and for a pickle that is not a
// dict of tensors.
StateDict read_torch_state_dict(const std::string& path);

// Writes `state` so that Python's torch.load(path) returns a dict of the same tensors (written
// to a temporary file and renamed, so a failure leaves no half-written file).
void write_torch_state_dict(const std::string& path, const StateDict& state);

// A single tensor saved with torch.save(tensor, path); throws for anything else.
torch::Tensor read_torch_tensor(const std::string& path);
// Writes `tensor` so that torch.load(path) returns it.
void write_torch_tensor(const std::string& path, const torch::Tensor& tensor);

}  // namespace posenc
