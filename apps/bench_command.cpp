// `posenc bench`: times posenc's fused CPU kernels against the composite LibTorch reference on the
// shapes of the kernel issues (PEG at B=64, 14x14, C=192; LFF at 12,544 positions; the rotation of
// q at B=64, 197 tokens, 6 heads of 64 channels), with the PEG's and the rotation's
// achieved GB/s against this machine's measured copy bandwidth, and each case's multiply-adds
// (PEG's convolution, the LFF MLP's products) against this machine's measured matrix-product rate.
// bench/compare_kernels_with_pytorch.py runs it with --json and adds the PyTorch eager figures.
#include <cstdio>
#include <iostream>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernel_cases.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/system_info.h"
#include "thread_count.h"

namespace posenc::cli {
namespace {

struct BenchArguments {
  int threads = 0;
  int repeats = 30;
  bool json = false;
  std::string peg_shape = "64,14,14,192,3,0";
  std::string lff_shape = "64,196,1,2,128,64,192";
  std::string rope_shape = "64,197,1,6,64";
};

std::string describe_shape(const nlohmann::json& shape) {
  std::string text;
  for (const auto& [key, value] : shape.items())
    text += (text.empty() ? "" : " ") + key + "=" +
            (value.is_string() ? value.get<std::string>() : value.dump());
  return text;
}

void run_bench(const BenchArguments& arguments) {
  if (arguments.threads > 0)
    configure_threads(arguments.threads);
  std::cerr << library_warning(detect_libraries());
  const auto peg_shape = bench::parse_peg_shape(arguments.peg_shape);
  const auto lff_shape = bench::parse_lff_shape(arguments.lff_shape);
  const auto rope_shape = bench::parse_rope_shape(arguments.rope_shape);
  const int64_t peg_tensor_bytes = peg_shape.batch *
                                   (peg_shape.prefix + peg_shape.height * peg_shape.width) *
                                   peg_shape.channels * 4;
  // Copy bandwidth at the PEG tensor's size (what the kernel's working set sees: mostly cache)
  // and at 256 MB (main memory).
  const double copy_gbs = bench::copy_bandwidth_gbs(peg_tensor_bytes, arguments.repeats);
  const int64_t dram_bytes = int64_t{256} << 20;
  const double dram_copy_gbs = bench::copy_bandwidth_gbs(dram_bytes, 5);
  // Matrix-product rate on a square product, the library's best case: the reference rate for every
  // case's multiply-adds.
  const int64_t matmul_size = 1024;
  const double matmul_gflops = bench::matmul_gflops(matmul_size, 10);

  auto cases = bench::peg_cases(peg_shape);
  for (auto& lff_case : bench::lff_cases(lff_shape))
    cases.push_back(std::move(lff_case));
  for (auto& rope_case : bench::rope_cases(rope_shape))
    cases.push_back(std::move(rope_case));

  nlohmann::json results = nlohmann::json::array();
  for (const auto& kernel_case : cases) {
    const double fused = bench::median_seconds(kernel_case.fused, arguments.repeats);
    const double reference = bench::median_seconds(kernel_case.reference, arguments.repeats);
    nlohmann::json result = {{"name", kernel_case.name},
                             {"shape", kernel_case.shape},
                             {"fused_ms", fused * 1e3},
                             {"reference_ms", reference * 1e3},
                             {"note", kernel_case.note}};
    if (kernel_case.bytes > 0) {
      result["bytes"] = kernel_case.bytes;
      result["gbs"] = static_cast<double>(kernel_case.bytes) / fused / 1e9;
      // the time the bytes take at copy bandwidth: the memory-traffic bound
      result["bound_ms"] = static_cast<double>(kernel_case.bytes) / (copy_gbs * 1e9) * 1e3;
      result["dram_bound_ms"] =
          static_cast<double>(kernel_case.bytes) / (dram_copy_gbs * 1e9) * 1e3;
    }
    if (kernel_case.flops > 0) {
      result["flops"] = kernel_case.flops;
      result["gflops"] = static_cast<double>(kernel_case.flops) / fused / 1e9;
      // the time the multiply-adds alone would take at the square product's rate
      result["compute_bound_ms"] =
          static_cast<double>(kernel_case.flops) / (matmul_gflops * 1e9) * 1e3;
    }
    results.push_back(result);
  }

  const nlohmann::json report = {{"threads", at::get_num_threads()},
                                 {"simd", to_string(active_simd_level())},
                                 {"copy_bandwidth_gbs", copy_gbs},
                                 {"copy_buffer_bytes", peg_tensor_bytes},
                                 {"dram_copy_bandwidth_gbs", dram_copy_gbs},
                                 {"matmul_gflops", matmul_gflops},
                                 {"matmul_size", matmul_size},
                                 {"repeats", arguments.repeats},
                                 {"cases", results}};
  if (arguments.json) {
    std::cout << report.dump(2) << "\n";
    return;
  }
  std::printf(
      "posenc bench: %d threads, %s kernels, median of %d runs\n"
      "copy bandwidth %.1f GB/s at %.1f MB (the PEG tensor's size), %.1f GB/s at %.0f MB\n"
      "matrix products %.1f GFLOP/s (MKL sgemm, %lld x %lld by %lld x %lld)\n\n",
      at::get_num_threads(), to_string(active_simd_level()).c_str(), arguments.repeats, copy_gbs,
      static_cast<double>(peg_tensor_bytes) / 1e6, dram_copy_gbs,
      static_cast<double>(dram_bytes) / 1e6, matmul_gflops, static_cast<long long>(matmul_size),
      static_cast<long long>(matmul_size), static_cast<long long>(matmul_size),
      static_cast<long long>(matmul_size));
  std::printf("%-24s %10s %13s %9s  %s\n", "case", "fused ms", "reference ms", "speed-up",
              "achieved (x bound)");
  for (const auto& result : results) {
    const double fused = result["fused_ms"], reference = result["reference_ms"];
    char achieved[128] = "";
    char compute[32] = "";
    if (result.contains("compute_bound_ms"))
      std::snprintf(compute, sizeof(compute), ", %.2fx multiply-adds",
                    fused / result["compute_bound_ms"].get<double>());
    if (result.contains("gbs"))
      std::snprintf(achieved, sizeof(achieved), "%.1f GB/s (%.2fx same-size copy, %.2fx DRAM%s)",
                    result["gbs"].get<double>(), fused / result["bound_ms"].get<double>(),
                    fused / result["dram_bound_ms"].get<double>(), compute);
    else if (result.contains("gflops"))
      std::snprintf(achieved, sizeof(achieved), "%.1f GFLOP/s (%.2fx matrix products)",
                    result["gflops"].get<double>(),
                    fused / result["compute_bound_ms"].get<double>());
    std::printf("%-24s %10.3f %13.3f %8.1fx  %s\n", result["name"].get<std::string>().c_str(),
                fused, reference, reference / fused, achieved);
  }
  std::printf("\nshapes:\n");
  for (const auto& result : results)
    std::printf("  %-22s %s; %s\n", result["name"].get<std::string>().c_str(),
                describe_shape(result["shape"]).c_str(), result["note"].get<std::string>().c_str());
  std::printf(
      "\n\"x bound\": fused time over the time its minimal bytes take at copy bandwidth "
      "(same-size\n"
      "buffers, which stay in cache, and main memory), or over the time its multiply-adds (PEG:\n"
      "the convolution's; LFF: the MLP's matrix products, and GFLOP/s of those alone) take at the\n"
      "square product's rate.\n"
      "PyTorch eager and compiled on the same shapes: .venv/bin/python "
      "bench/compare_kernels_with_pytorch.py\n");
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto arguments = std::make_shared<BenchArguments>();
  auto* command = app.add_subcommand(
      "bench", "Time the fused PEG, LFF and rotary kernels against the LibTorch reference path");
  add_threads_option(*command, arguments->threads,
                     "intra-op threads (default: OMP_NUM_THREADS or every core)");
  command->add_option("--repeats", arguments->repeats, "timed runs per case (the median counts)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--peg-shape", arguments->peg_shape, "PEG shape B,H,W,C,k,prefix")
      ->capture_default_str();
  command->add_option("--lff-shape", arguments->lff_shape, "LFF shape B,N,G,M,F,H,D")
      ->capture_default_str();
  command->add_option("--rope-shape", arguments->rope_shape,
                      "rotary shape B,N,prefix,heads,head_dim (q of B images of N tokens)")
      ->capture_default_str();
  command->add_flag("--json", arguments->json, "print one JSON object instead of a table");
  command->callback([arguments] { run_bench(*arguments); });
}

}  // namespace posenc::cli
