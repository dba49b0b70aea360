"""What the benchmark scripts share: reading the zstd JSONL corpus and running the datatrove side.

datatrove runs in its own interpreter (/work/venv-datatrove, see benchmarks/README.md) because it
pulls a fastText wheel that conflicts with gemmaflow's.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zstandard

REPO = Path(__file__).resolve().parents[1]
DATATROVE_PYTHON = Path("/work/venv-datatrove/bin/python")


def zst_jsonl(path: Path, limit: int | None = None) -> Iterator[dict]:
    """Records of a .jsonl.zst file, the first `limit` of them when given."""
    with path.open("rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        for n, line in enumerate(line for line in lines if line.strip()):
            if limit is not None and n >= limit:
                return
            yield json.loads(line)


def run_datatrove(
    mode: str, corpus: Path, limit: int | None, repeats: int, quiet: bool = False
) -> dict[str, Any] | None:
    """The same first `limit` documents through datatrove_baseline.py `--mode`; None if datatrove is absent."""
    if not DATATROVE_PYTHON.exists():
        print(f"datatrove side skipped: {DATATROVE_PYTHON} not found (see benchmarks/README.md)")
        return None
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        cmd = [str(DATATROVE_PYTHON), str(REPO / "benchmarks" / "datatrove_baseline.py"), "--mode", mode,
               "--input", str(corpus / "docs.jsonl.zst"), "--repeats", str(repeats), "--json-out", result.name]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        output = subprocess.DEVNULL if quiet else None
        subprocess.run(cmd, check=True, stdout=output, stderr=output)
        return json.loads(Path(result.name).read_text())
