#!/usr/bin/env bash
# Makes the timm reference environment if it is missing or holds other versions, and prints its
# Python. timm imports torchvision, whose PyPI wheels do not import beside the project's PyTorch
# 2.13.0 CPU wheel (.venv), so the reference side runs in an environment of its own: .venv-timm
# (POSENC_TIMM_VENV names another folder, git-ignored, about 5.5 GB: PyTorch 2.14.1, a CUDA build
# that also runs on the CPU, torchvision 0.29.1 and timm 1.0.31; this machine keeps those wheels
# on disk). Used by scripts/make-timm-fixtures.sh and scripts/bench-models.sh; CI needs neither.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${POSENC_TIMM_VENV:-.venv-timm}"
python="$venv/bin/python"
requirements=(torch==2.14.1 torchvision==0.29.1 timm==1.0.31)
if ! "$python" - 2>/dev/null <<'CHECK'
import timm, torch, torchvision
versions = (torch.__version__.split("+")[0], torchvision.__version__.split("+")[0], timm.__version__)
assert versions == ("2.14.1", "0.29.1", "1.0.31"), versions
CHECK
then
  echo "timm-venv: making $venv with ${requirements[*]}" >&2
  # Debian's python3 (python3-venv and python3-dev come with scripts/install-deps.sh):
  # torch.compile compiles C++ against the interpreter's Python.h
  [ -x "$python" ] || /usr/bin/python3 -m venv "$venv"
  "$python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) >&2
fi
echo "$python"
