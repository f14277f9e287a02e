#!/usr/bin/env bash
# The README's main command: set up, then run the one-command demo on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/chronotope demo "$@"
