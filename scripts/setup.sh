#!/usr/bin/env bash
# Creates .venv and installs Chronotope with its dev tools. Idempotent: re-running is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
export HF_HUB_OFFLINE=1
# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU build, never a CUDA one.
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "==> installing Chronotope and its dependencies into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch .venv/.installed
fi
echo "==> .venv ready: $(.venv/bin/chronotope --help >/dev/null && echo 'chronotope OK')"
