#!/usr/bin/env bash
# The README's first command: install gemmaflow in .venv and run the end-to-end demo on the bundled sample:
# curate -> tokenizer -> pack -> pretrain -> sample -> SFT -> chat -> report, all into runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh ""
OUT="${OUT:-runs/demo}"
"$VENV/bin/gemmaflow" demo --output "$OUT" --overwrite "$@"
