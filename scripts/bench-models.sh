#!/usr/bin/env bash
# Training throughput and batch-1 latency of posenc's nano and micro ViTs beside the same models
# in PyTorch eager (Debian's python3-torch), measured in one session. Keep the machine idle.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
fi
/usr/bin/python3 bench/compare_models_with_pytorch.py "$@"
