#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace posenc::cli {

// Each sub-command registers its options and its callback on the top-level app.
void add_info_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_attention_command(CLI::App& app);
void add_probe_command(CLI::App& app);
void add_show_command(CLI::App& app);

// The command line the program was started with (argv), for commands that start copies of
// themselves (`train --nproc`).
const std::vector<std::string>& command_line();

}  // namespace posenc::cli
