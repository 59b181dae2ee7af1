#!/usr/bin/env bash
# Install everything, then build the HTML book into _build/html (notebooks are executed,
# with a cache so a rebuild only re-runs notebooks that changed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
.venv/bin/jupyter-book build . "$@"
echo "book: open _build/html/index.html"
