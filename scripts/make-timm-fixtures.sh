#!/usr/bin/env bash
# Regenerates tests/fixtures/timm/, the golden outputs of timm's own models that
# tests/python/timm_parity_test.py checks posenc's imports against (docs/interop.md).
#
# timm runs in .venv-timm, its own environment, made when missing (scripts/timm-venv.sh says why).
# CI does not run this: it only reads the committed fixtures from the project's .venv.
#
# Usage: scripts/make-timm-fixtures.sh [--out FOLDER]   (arguments go to the generator)
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(scripts/timm-venv.sh)
exec "$python" tests/python/make_timm_fixtures.py "$@"
