#!/usr/bin/env bash
# The main job. Until the training command lands: installs, builds and prints a tour of the
# encodings (kind, parameters, unseen grid sizes, how embedding similarity follows distance).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build/posenc info
echo
build/posenc demo
