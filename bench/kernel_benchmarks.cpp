// Google Benchmark micro-benchmarks of posenc's fused kernels against the LibTorch reference path,
// on the cases `posenc bench` times (bench/kernel_cases.cpp). Every case runs as
//   <case>/reference and <case>/fused/<simd level>, for each SIMD level this CPU has,
// so the scalar fallback is timed too. Threads: OMP_NUM_THREADS or every core; shapes:
//   --peg-shape=B,H,W,C,k,prefix --lff-shape=B,N,G,M,F,H,D (before Google Benchmark's own flags).
#include <benchmark/benchmark.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <c10/util/Exception.h>

#include "kernel_cases.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/system_info.h"

namespace {

using posenc::SimdLevel;

void register_case(const posenc::bench::KernelCase& kernel_case) {
  benchmark::RegisterBenchmark((kernel_case.name + "/reference").c_str(),
                               [run = kernel_case.reference](benchmark::State& state) {
                                 for (auto _ : state)
                                   run();
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (level > posenc::supported_simd_level())
      continue;
    auto* registered = benchmark::RegisterBenchmark(
        (kernel_case.name + "/fused/" + posenc::to_string(level)).c_str(),
        [run = kernel_case.fused, level, bytes = kernel_case.bytes,
         flops = kernel_case.flops](benchmark::State& state) {
          posenc::ScopedSimdLevel simd(level);
          for (auto _ : state)
            run();
          if (bytes > 0)
            state.SetBytesProcessed(state.iterations() * bytes);
          if (flops > 0)
            state.counters["FLOPS"] = benchmark::Counter(
                static_cast<double>(flops), benchmark::Counter::kIsIterationInvariantRate);
        });
    registered->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

// Takes --peg-shape= and --lff-shape= out of argv, leaving Google Benchmark's flags.
std::string take_flag(int& argc, char** argv, const char* name, const char* fallback) {
  const std::string prefix = std::string(name) + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      std::string value = argv[i] + prefix.size();
      for (int j = i; j + 1 < argc; ++j)
        argv[j] = argv[j + 1];
      --argc;
      return value;
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    posenc::configure_threads();
    posenc::configure_memory_allocator();
    std::cerr << posenc::library_warning(posenc::detect_libraries());
    const auto peg =
        posenc::bench::parse_peg_shape(take_flag(argc, argv, "--peg-shape", "64,14,14,192,3,0"));
    const auto lff = posenc::bench::parse_lff_shape(
        take_flag(argc, argv, "--lff-shape", "64,196,1,2,128,64,192"));
    for (const auto& kernel_case : posenc::bench::peg_cases(peg))
      register_case(kernel_case);
    for (const auto& kernel_case : posenc::bench::lff_cases(lff))
      register_case(kernel_case);
    const auto rope =
        posenc::bench::parse_rope_shape(take_flag(argc, argv, "--rope-shape", "64,197,1,6,64"));
    for (const auto& kernel_case : posenc::bench::rope_cases(rope))
      register_case(kernel_case);
  } catch (const c10::Error& error) {
    std::cerr << "posenc_kernel_benchmarks: " << error.what_without_backtrace() << "\n";
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
