#!/usr/bin/env bash
# Regenerates tests/fixtures/timm/, the golden outputs of timm's own models that
# tests/python/timm_parity_test.py checks posenc's imports against (docs/interop.md), and
# tests/fixtures/timm_functions/, timm's layer functions that the C++ tests check posenc's against
# (make_timm_function_fixtures.py: BEiT's geometric resampling of relative position bias tables).
#
# timm runs in .venv-timm, its own environment, made when missing (scripts/timm-venv.sh says why).
# CI does not run this: it only reads the committed fixtures from the project's .venv.
#
# Usage: scripts/make-timm-fixtures.sh [--out FOLDER]   (arguments go to the model generator)
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(scripts/timm-venv.sh)
"$python" tests/python/make_timm_function_fixtures.py
exec "$python" tests/python/make_timm_fixtures.py "$@"
