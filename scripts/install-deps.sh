#!/usr/bin/env bash
# Installs every Debian package posenc needs to build and test. Idempotent: when everything is
# already installed it only checks (well under a second) and prints nothing.
set -euo pipefail

packages=(
  cmake ninja-build g++          # build tools
  libtorch-dev                   # LibTorch (tensors, autograd, nn)
  libopenblas0-openmp            # fast BLAS for LibTorch: the reference BLAS is ~80x slower
  nlohmann-json3-dev             # encoding configurations
  libcli11-dev                   # the posenc command line
  zlib1g-dev libstb-dev          # IDX .gz files, PNG/JPEG images
  libsleef-dev                   # vectorised sin/cos in the fused Fourier-feature kernel
  libdnnl-dev                    # oneDNN's sgemm for the fused linear layers of the LFF MLP
  libgloo-dev                    # headers of Gloo, LibTorch's engine for data-parallel training
  dataset-fashion-mnist          # the default data set
  gnuplot-nox                    # PNG plots of training curves
  libgtest-dev libgmock-dev      # tests
  libbenchmark-dev               # kernel micro-benchmarks (bench/)
  python3-torch                  # PyTorch interop tests and comparisons (same LibTorch build)
  clang libclang-rt-14-dev       # sanitizer build and libFuzzer targets (scripts/sanitize.sh, fuzz.sh)
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
