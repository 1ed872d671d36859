#pragma once

#include <functional>
#include <string>

#include <ATen/core/ivalue.h>
#include <c10/core/Allocator.h>

namespace posenc {

// Reads the pickle of a torch.save archive (data.pkl; protocols 2 to 5) into an IValue of dicts,
// lists, tuples, strings, numbers, None and tensors. Storages are read through
// `read_storage(key)`, which returns the bytes of the archive's data/<key> and their count.
//
// Written by hand because LibTorch's own unpickler (1.13, and 2.13 still) cannot read what
// module.state_dict() pickles: it turns collections.OrderedDict into None and then fails on the
// SETITEMS that fills it (docs/interop.md). It
// builds only what state dicts and checkpoints hold: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the torch.*Storage types and
// torch.jit._pickle.restore_type_tag (LibTorch's own writer tags dict types with it); BUILD
// (for instance the _metadata of a state dict) is ignored. Anything else is an error naming it.
c10::IValue unpickle_torch_save(
    const std::string& pickle,
    const std::function<std::pair<at::DataPtr, size_t>(const std::string& key)>& read_storage);

}  // namespace posenc
