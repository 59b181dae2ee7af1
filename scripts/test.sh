#!/usr/bin/env bash
# The one command that runs every test: unit tests of `utils`, tools and lab checkers, and
# every notebook in chapters/ and labs/ executed top to bottom by nbval, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# The browser tests need Debian's Chromium (Playwright drives it; it never downloads a browser).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing chromium and a CJK font with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null \
      || echo "test: could not install chromium; browser tests will fail in CI and skip elsewhere"
  else
    echo "test: chromium not found and not root; browser tests will be skipped (sudo apt-get install chromium)"
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 LMHO_ONLINE=0
# The same offline settings as scripts/book.sh (README, "Offline and online"); nothing else that would
# make a notebook behave differently from the way a reader runs it (no MPLBACKEND, no hash seed).
export HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
# Two workers (the machine has 2 cores); --dist loadfile keeps every notebook on one kernel.
# Each worker's torch uses one thread so the two do not fight over the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile \
  --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
  --durations=15 tests chapters labs instructor "$@"
