// posenc: one executable, one sub-command per job. Every error reaches the user as one message
// (what went wrong, what to do), never a stack trace.
#include <malloc.h>

#include <iostream>
#include <limits>

#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "posenc/system_info.h"
#include "posenc/version.h"

namespace posenc::cli {
namespace {
std::vector<std::string> g_command_line;
}  // namespace

const std::vector<std::string>& command_line() {
  return g_command_line;
}

}  // namespace posenc::cli

namespace {

// glibc hands blocks above 128 KB back to the kernel on free and trims the heap top, so every
// step's attention and activation buffers are page-faulted in and zeroed again: a third of the
// time of nano training and evaluation went to the kernel. Keeping freed memory for reuse (as
// PyTorch's recommended jemalloc/tcmalloc do) took nano training from 620 to 820 img/s and 56 px
// evaluation on one thread from 51 s to 30 s (docs/training.md); the price is that the process
// keeps its peak memory until it exits.
void keep_freed_memory_for_reuse() {
  constexpr int kOneGigabyte = 1 << 30;  // larger blocks are still mapped and unmapped
  mallopt(M_MMAP_THRESHOLD, kOneGigabyte);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

int run(int argc, char** argv) {
  keep_freed_memory_for_reuse();
  posenc::cli::g_command_line.assign(argv, argv + argc);
  CLI::App app{std::string("posenc ") + posenc::kVersion +
               ": spatial positional encodings for vision transformers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(posenc::kVersion));
  posenc::cli::add_info_command(app);
  posenc::cli::add_demo_command(app);
  posenc::cli::add_train_command(app);
  posenc::cli::add_eval_command(app);
  posenc::cli::add_predict_command(app);
  posenc::cli::add_bench_command(app);
  posenc::cli::add_import_command(app);
  posenc::cli::add_export_command(app);
  posenc::cli::add_forward_command(app);
  posenc::cli::add_attention_command(app);
  posenc::cli::add_probe_command(app);
  try {
    posenc::configure_threads();
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const c10::Error& error) {
    std::cerr << "posenc: error: " << error.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "posenc: error: " << error.what() << "\n";
    return 1;
  }
}
