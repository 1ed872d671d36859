#!/usr/bin/env bash
# The main job: installs, builds, trains CPVT-GAP (a `nano` ViT with a PEG after block 0 and a
# global-average-pooled head) on Fashion-MNIST, then prints its test accuracy at the training
# resolution and at two unseen ones. About 10 minutes on 2 cores.
# Run again to continue an interrupted run (Ctrl-C writes a checkpoint) or to re-evaluate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh posenc_cli  # the command line only: the tests are built by scripts/test.sh
out=runs/main
if [ -f "$out/last.pt" ]; then
  build/posenc train --out "$out" --resume
else
  build/posenc train --model nano --pe peg --head gap --epochs 6 --out "$out"
fi
build/posenc eval --checkpoint "$out/last.pt" --resolutions 20,28,36
echo "metrics: $out/metrics.jsonl  curves: $out/curves.png"
