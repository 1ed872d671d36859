#pragma once
// The kernel benchmark cases, defined once and timed by both `posenc bench` (medians, ratios,
// GB/s) and the Google Benchmark executable posenc_kernel_benchmarks.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace posenc::bench {

struct PegShape {
  int64_t batch = 64, height = 14, width = 14, channels = 192, kernel = 3, prefix = 0;
};

struct LffShape {
  int64_t batch = 64, tokens = 196, groups = 1, values = 2, fourier = 128, hidden = 64, dim = 192;
};

// Parses "B,H,W,C,k,prefix" and "B,N,G,M,F,H,D"; throws naming the expected form.
PegShape parse_peg_shape(const std::string& text);
LffShape parse_lff_shape(const std::string& text);

struct KernelCase {
  std::string name;
  nlohmann::json shape;
  // Bytes the work must move at least (read and written once each); 0 where not meaningful.
  int64_t bytes = 0;
  // One run of the operation: posenc's fused path, and the composite LibTorch reference path
  // (for the grid-PE cases: the PE recomputed on every call instead of cached).
  std::function<void()> fused;
  std::function<void()> reference;
  std::string note;
  // Floating-point operations the work must do (a multiply-add counts 2): the LFF MLP's matrix
  // products, PEG's depthwise convolution taps that read a token (not padding); 0 where not
  // meaningful.
  int64_t flops = 0;
};

// peg_forward, peg_forward_backward
std::vector<KernelCase> peg_cases(const PegShape& shape);
// lff_forward, lff_forward_backward (per-token positions), lff_grid_inference_b1 and _bB (a
// ViT's 14 x 14 grid in inference, batch 1 and shape.batch)
std::vector<KernelCase> lff_cases(const LffShape& shape);

// Median seconds of `repeats` runs of `run` after `warmup` runs.
double median_seconds(const std::function<void()>& run, int repeats, int warmup = 3);

// Copy bandwidth of this machine in GB/s (bytes read + bytes written per second) for buffers of
// `bytes`, with LibTorch's copy on the current thread count.
double copy_bandwidth_gbs(int64_t bytes, int repeats);

// Matrix-product throughput of this machine in GFLOP/s: posenc::linear_fused (oneDNN's sgemm) on
// a size x size by size x size float32 product, on the current thread count. A square product of
// this size is what the library does best: the reference rate for the LFF MLP's products (not a
// strict bound; the MLP's products alone ran at about this rate on the machine measured).
double matmul_gflops(int64_t size, int repeats);

}  // namespace posenc::bench
