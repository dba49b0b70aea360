#!/usr/bin/env bash
# The README's first command: install gemmaflow in .venv and run the main job on the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh ""
OUT="${OUT:-runs/sample}"
"$VENV/bin/gemmaflow" curate --output "$OUT" --overwrite "$@"
echo "curated Parquet in $OUT/data, rejected documents in $OUT/rejected, counts in $OUT/stats.json"
