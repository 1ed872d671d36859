// `posenc info`: what this build is and what it runs on: version, registered encodings with their
// options and defaults, the LibTorch it runs on and the BLAS, oneDNN and
// OpenMP runtime inside it, threads, SIMD level.
#include <iomanip>
#include <iostream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "posenc/encoding_registry.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/system_info.h"
#include "posenc/version.h"

namespace posenc::cli {
namespace {

// Whether an encoding reads explicit positions, asked of a small instance of it.
bool accepts_positions(const EncodingDefinition& definition) {
  return make_encoding(nlohmann::json{{"type", definition.name}}, {8, {2, 2, 0}})
      ->accepts_positions();
}

nlohmann::json info_as_json(const LibraryInfo& libraries) {
  nlohmann::json encodings = nlohmann::json::array();
  for (const auto& definition : registered_encodings()) {
    nlohmann::json options = nlohmann::json::array();
    for (const auto& option : definition.options) {
      options.push_back({{"key", option.key},
                         {"type", describe(option.type)},
                         {"default", option.default_value},
                         {"choices", option.choices},
                         {"help", option.help}});
    }
    encodings.push_back({{"name", definition.name},
                         {"summary", definition.summary},
                         {"accepts_positions", accepts_positions(definition)},
                         {"options", options}});
  }
  return {{"version", kVersion},
          {"libtorch",
           {{"built_against", libraries.built_against},
            {"running_on", libraries.running_on},
            {"library", libraries.libtorch_path}}},
          {"blas", libraries.blas},
          {"onednn", libraries.onednn},
          {"openmp_runtimes", libraries.openmp_runtimes},
          {"separate_onednn_libraries", libraries.separate_onednn_libraries},
          {"threads", at::get_num_threads()},
          {"cores", available_cores()},
          {"memory_allocator", memory_allocator_setting()},
          {"simd", to_string(supported_simd_level())},
          {"kernels", fused_kernels_enabled() ? to_string(active_simd_level()) : "reference"},
          {"encodings", encodings}};
}

void print_info(const nlohmann::json& info) {
  const auto& libtorch = info["libtorch"];
  std::string openmp;
  for (const auto& runtime : info["openmp_runtimes"])
    openmp += (openmp.empty() ? "" : ", ") + runtime.get<std::string>();
  std::cout << "posenc " << info["version"].get<std::string>() << " (LibTorch "
            << libtorch["running_on"].get<std::string>() << ", built against "
            << libtorch["built_against"].get<std::string>() << ")\n"
            << "LibTorch: " << libtorch["library"].get<std::string>() << "\n"
            << "BLAS:     " << info["blas"].get<std::string>()
            << " (inside LibTorch; also the sgemm of posenc's fused linear layers)\n"
            << "oneDNN:   " << info["onednn"].get<std::string>() << " (inside LibTorch; "
            << info["separate_onednn_libraries"].size() << " other oneDNN libraries loaded)\n"
            << "OpenMP:   " << info["openmp_runtimes"].size() << " runtime: " << openmp << "\n"
            << "threads:  " << info["threads"] << " of " << info["cores"] << " available cores\n"
            << "memory:   " << info["memory_allocator"].get<std::string>() << "\n"
            << "SIMD:     " << info["simd"].get<std::string>()
            << " (fused kernels: " << info["kernels"].get<std::string>() << ")\n\n"
            << "Encodings (spec: NAME:KEY=VALUE,...  e.g. lff:F=64,H=32,gamma=10):\n";
  for (const auto& encoding : info["encodings"]) {
    std::cout << "\n  " << encoding["name"].get<std::string>() << "  "
              << encoding["summary"].get<std::string>()
              << (encoding["accepts_positions"].get<bool>() ? "" : " [token grids only]") << "\n";
    for (const auto& option : encoding["options"]) {
      std::string type = option["type"].get<std::string>();
      if (!option["choices"].empty()) {
        type.clear();
        for (const auto& choice : option["choices"]) {
          type += (type.empty() ? "" : "|") + choice.get<std::string>();
        }
      }
      const auto& fallback = option["default"];
      std::cout << "      " << std::left << std::setw(14) << option["key"].get<std::string>()
                << std::setw(13)
                << (fallback.is_string() ? fallback.get<std::string>() : fallback.dump()) << type
                << "\n"
                << "      " << std::setw(14) << "" << option["help"].get<std::string>() << "\n";
    }
  }
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* command = app.add_subcommand("info",
                                     "Version, encodings and their options, BLAS, "
                                     "threads and SIMD level");
  auto as_json = std::make_shared<bool>(false);
  command->add_flag("--json", *as_json, "print the same as one JSON object");
  command->callback([as_json] {
    const LibraryInfo libraries = detect_libraries();
    std::cerr << library_warning(libraries);
    const auto info = info_as_json(libraries);
    if (*as_json) {
      std::cout << info.dump(2) << "\n";
    } else {
      print_info(info);
    }
  });
}

}  // namespace posenc::cli
