#!/usr/bin/env bash
# Installs everything posenc needs to build and test: Debian's packages (apt-get) and the
# project's virtual environment .venv with LibTorch inside PyTorch 2.13.0 from pip (pip takes the
# CPU wheel this machine keeps on disk; elsewhere it downloads the same ~200 MB CPU build).
# Idempotent: when everything is already installed it only checks (about a second) and prints
# nothing. POSENC_VENV names another environment folder.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++          # build tools
  python3-venv python3-dev       # the project's virtual environment; Python.h for the ops loader
  nlohmann-json3-dev             # encoding configurations
  libcli11-dev                   # the posenc command line
  zlib1g-dev libstb-dev          # IDX .gz files, PNG/JPEG images
  libgloo-dev                    # headers of Gloo, whose code is inside LibTorch (data-parallel)
  dataset-fashion-mnist          # the default data set
  gnuplot-nox                    # PNG plots of training curves
  libgtest-dev libgmock-dev      # tests
  libbenchmark-dev               # kernel micro-benchmarks (bench/)
  clang libclang-rt-14-dev       # sanitizer build and libFuzzer targets (scripts/sanitize.sh, fuzz.sh)
)
# LibTorch carries its own BLAS (MKL), oneDNN, SLEEF and OpenMP runtime: posenc uses those, not
# Debian's, so that a process holds one of each (cmake/libtorch.cmake).
torch_requirement="torch==2.13.0"
python_packages=("$torch_requirement" "numpy<3")

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="${POSENC_VENV:-.venv}"
python="$venv/bin/python"
if ! "$python" -c "import torch, numpy; assert torch.__version__.split('+')[0] == '2.13.0'" 2>/dev/null; then
  echo "install-deps: making $venv with ${python_packages[*]}"
  # with Debian's python3 (python3-venv and python3-dev above), not whichever is first on PATH
  [ -x "$python" ] || /usr/bin/python3 -m venv "$venv"
  "$python" -m pip install --quiet --disable-pip-version-check "${python_packages[@]}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
