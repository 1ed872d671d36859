// posenc: one executable, one sub-command per job. Every error reaches the user as one message
// (what went wrong, what to do), never a stack trace.

#include <algorithm>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

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

// Levenshtein distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The name among `names` nearest to `typed`, if it is near enough to be what was meant.
std::string nearest(const std::string& typed, const std::vector<std::string>& names) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, typed.size() / 3) + 1;
  for (const auto& name : names) {
    const size_t distance = edit_distance(typed, name);
    if (distance < best_distance) {
      best = name;
      best_distance = distance;
    }
  }
  return best;
}

const CLI::App* subcommand_named(const CLI::App& app, const std::string& name) {
  for (const auto* command : app.get_subcommands({})) {
    if (command->get_name() == name)
      return command;
  }
  return nullptr;
}

// A command-line error as one message naming what to do: CLI11's own text, with the command or
// flag that was probably meant, and where the valid ones are listed.
std::string argument_error(const CLI::App& app, int argc, char** argv,
                           const CLI::ParseError& error) {
  const std::string first = argc > 1 ? argv[1] : "";
  if (!first.empty() && first[0] != '-' && subcommand_named(app, first) == nullptr) {
    std::vector<std::string> commands;
    for (const auto* command : app.get_subcommands({}))
      commands.push_back(command->get_name());
    const std::string meant = nearest(first, commands);
    return "'" + first + "' is not a posenc command" +
           (meant.empty() ? "" : "; did you mean '" + meant + "'?") +
           " ('posenc --help' lists them)";
  }
  const CLI::App* command = subcommand_named(app, first);
  std::string message = error.what();
  if (command == nullptr)
    return message + " ('posenc --help' lists the commands)";
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    std::vector<std::string> flags;
    for (const auto* option : command->get_options())
      flags.push_back(option->get_name());
    for (int i = 2; i < argc; ++i) {
      const std::string argument = std::string(argv[i]).substr(0, std::string(argv[i]).find('='));
      if (argument.rfind("--", 0) == 0 && command->get_option_no_throw(argument) == nullptr) {
        const std::string meant = nearest(argument, flags);
        if (!meant.empty())
          message += "; did you mean " + meant + "?";
        break;
      }
    }
  }
  return message + " ('posenc " + first + " --help' lists its options)";
}

int run(int argc, char** argv) {
  posenc::configure_memory_allocator();  // before anything allocates much
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
  posenc::cli::add_show_command(app);
  try {
    posenc::configure_threads();
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& error) {
    return error.get_exit_code();  // a command's own exit status (train --nproc's ranks)
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0)
      return app.exit(error);  // --help, --version
    std::cerr << "posenc: error: " << argument_error(app, argc, argv, error) << "\n";
    return 1;
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
