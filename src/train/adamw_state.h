#pragma once

#include <torch/torch.h>

#include <string>

namespace posenc {

// Loads AdamW's per-parameter state and group options from the archive AdamW::save wrote, under
// either spelling of its keys. The archive names each parameter by the address of its TensorImpl
// as text: LibTorch 1.13 wrote it in hex ("0x557d638b8ec0"), LibTorch 2.x writes decimal, and
// 2.x's own AdamW::load parses decimal only, so a 1.13 checkpoint's states would all collide on
// address 0 and land on parameters of other shapes. `path` names the checkpoint in errors.
void load_adamw_state(torch::serialize::InputArchive& archive, torch::optim::AdamW& optimizer,
                      const std::string& path);

}  // namespace posenc
