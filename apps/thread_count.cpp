#include "thread_count.h"

#include <c10/util/Exception.h>

#include "argument_parsing.h"
#include "posenc/system_info.h"

namespace posenc::cli {

int checked_thread_count(int64_t requested) {
  const int cores = available_cores();
  TORCH_CHECK(requested >= 1 && requested <= cores, "--threads takes 1 to ", cores,
              " (the cores this process may use; more threads than cores only slow it down), got ",
              requested, "; leave it out to use all ", cores);
  return static_cast<int>(requested);
}

void add_threads_option(CLI::App& command, int& threads, const std::string& help) {
  command
      .add_option_function<std::string>(
          "--threads",
          [&threads](const std::string& text) {
            threads = checked_thread_count(parse_integer_value(text, "--threads"));
          },
          help)
      ->type_name("INT");
}

}  // namespace posenc::cli
