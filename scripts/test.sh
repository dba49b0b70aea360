#!/usr/bin/env bash
# The README's second command: install gemmaflow with its dev extra in .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh "[dev]"
"$VENV/bin/python" -m pytest -q "$@"
