#!/usr/bin/env bash
# Training throughput and batch-1 latency of posenc's ViTs (nano and micro presets; CPVT-GAP with a
# PEG and DeiT with a learned table) beside timm's VisionTransformer with the same configuration,
# in PyTorch eager and through torch.compile, measured in one run. Keep the machine idle.
# Builds posenc (scripts/build.sh), makes the reference environment if it is missing, then runs
# bench/compare_models_with_pytorch.py with this script's arguments (e.g. --threads 2 --rounds 3,
# --models nano,micro,tiny, --json; --help lists them without building anything).
# timm runs in .venv-timm, its own environment (scripts/timm-venv.sh says why).
set -euo pipefail
cd "$(dirname "$0")/.."

for argument in "$@"; do
  if [ "$argument" = "-h" ] || [ "$argument" = "--help" ]; then
    sed -n '2,8s/^# \{0,1\}//p' "$0"
    echo
    exec python3 bench/compare_models_with_pytorch.py --help
  fi
done

scripts/build.sh

python=$(scripts/timm-venv.sh)
exec "$python" bench/compare_models_with_pytorch.py "$@"
