#pragma once

// The flags of `posenc train`, each declared once in one table (train_flags.cpp): its name, its
// help, the kinds of run it applies to and the setting of the run configuration it writes. The
// command's options, its --help (defaults read from the library's structs, so the CLI's defaults
// are the library's), the "flag given to the wrong kind of run" errors, the settings a --resume
// refuses to change and the configuration a new run starts from are all made from it: a new flag
// is one line there.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace posenc::cli {

enum RunKinds : unsigned { kImageRuns = 1u, kTokenSetRuns = 2u, kEveryRun = 3u };

// What a flag says.
enum class FlagRole {
  kSetting,  // writes settings of the run configuration, stored in its checkpoints
  kSource,   // where the settings come from: --task, --model, --config
  kRun,      // which run, and whether to continue it: --out, --resume
  kProcess,  // how this process takes part: --threads and the data-parallel flags
};

struct TrainFlag {
  std::string name;  // "--lr"
  std::string help;  // the default is added from the library's structs where there is one
  unsigned kinds = kEveryRun;
  FlagRole role = FlagRole::kSetting;
  // The settings it writes, as JSON pointers into the run configuration's JSON (RunConfig's or
  // SetRunConfig's): "/training/learning_rate". Each gets the value; a value that is an array
  // of one item per setting is spread over them instead (--position-shape 2x2).
  std::vector<std::string> settings;
  // The given text as the setting's value. Without one it is read by the type of the setting's
  // default: an integer, a non-negative integer, a finite number, text, a switch, or repeated
  // text for a list (--pe peg --pe lff).
  std::function<nlohmann::json(const std::string& text)> parse;
  // What --help says the default is, where it depends on more than one struct's field.
  std::string default_help;
  std::string group;  // --help section; empty: the main one
  bool may_change_on_resume = false;
  bool is_switch = false;  // a flag without a value, for flags that write no setting
  // The value's kind in --help, where the setting's type does not say it: INT, DURATION, GxM.
  std::string type_name;
};

const std::vector<TrainFlag>& train_flags();
const TrainFlag& train_flag(const std::string& name);

// Every flag of the table as an option of `command`.
void add_train_flags(CLI::App& command);

bool given(const CLI::App& command, const std::string& flag);
// The text given for `flag` (the last one, for a flag given twice).
const std::string& flag_text(const CLI::App& command, const std::string& flag);

// `task` is the run's: "image", "nearest-neighbour" or "layout".
void refuse_flags_of_other_runs(const std::string& task, const CLI::App& command);
// A resumed run keeps the settings its checkpoint stores: any flag that would change another
// one than --epochs and --time-budget is an error rather than silently ignored.
void refuse_changed_settings_on_resume(const CLI::App& command, const std::string& out_dir);

// `defaults` (a run configuration's JSON, with --config's file merged in) with the settings of
// every flag given that applies to runs of `kinds`.
nlohmann::json with_given_settings(nlohmann::json defaults, unsigned kinds,
                                   const CLI::App& command);
// Whether a flag given or `config_file` (the --config JSON; null without one) chose `setting`.
bool setting_chosen(const std::string& setting, const CLI::App& command,
                    const nlohmann::json& config_file);

}  // namespace posenc::cli
