# Shared by demo.sh and test.sh: make (or reuse) .venv with Python 3.11 and install gemmaflow into it.
# Usage: source scripts/_venv.sh EXTRAS   (EXTRAS like "" or "[dev]")
set -euo pipefail
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install --quiet ".$1"
