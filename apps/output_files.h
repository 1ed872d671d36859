#pragma once
// The one rule for the files posenc's commands write (export, import): never over one of the
// command's own inputs, never over an existing file unless --force is given, and into a folder
// that is made when missing. (`train --out` is a run folder, with its own rule: --resume.)
#include <string>
#include <vector>

namespace posenc::cli {

// Throws, naming the file, the `flag` that chose it and what to do, when `out` is one of `inputs`
// (the same file by any path) or exists and `force` is false; otherwise creates the folder `out`
// goes into.
void prepare_output_file(const std::string& out, bool force,
                         const std::vector<std::string>& inputs, const char* flag = "--out");

}  // namespace posenc::cli
