#pragma once

#include <CLI/CLI.hpp>

namespace posenc::cli {

// Each sub-command registers its options and its callback on the top-level app.
void add_info_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace posenc::cli
