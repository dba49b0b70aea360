"""What the benchmark scripts share: the corpus argument, reading its zstd JSONL, running the datatrove side.

The corpus is not part of the repository: each benchmark takes its folder (`--corpus`), holding
`docs.jsonl.zst` (the raw records) and `truth.jsonl.zst` (their ground-truth labels). datatrove runs
in its own interpreter (`--datatrove-python`, see benchmarks/README.md) because it pulls a fastText
wheel that conflicts with gemmaflow's.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zstandard

REPO = Path(__file__).resolve().parents[1]


def add_corpus_argument(parser: argparse.ArgumentParser) -> None:
    """`--corpus PATH`, required: there is no default location for data the repository does not ship."""
    parser.add_argument("--corpus", type=Path, required=True,
                        help="corpus folder with docs.jsonl.zst and its ground truth, truth.jsonl.zst")


def add_datatrove_argument(parser: argparse.ArgumentParser) -> None:
    """`--datatrove-python PATH`, optional: without it the datatrove side is skipped with a note."""
    parser.add_argument("--datatrove-python", type=Path,
                        help="python of datatrove's own virtual environment (benchmarks/README.md); "
                             "without it the datatrove side is skipped")


def zst_jsonl(path: Path, limit: int | None = None) -> Iterator[dict]:
    """Records of a .jsonl.zst file, the first `limit` of them when given."""
    with path.open("rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        for n, line in enumerate(line for line in lines if line.strip()):
            if limit is not None and n >= limit:
                return
            yield json.loads(line)


def run_datatrove(
    mode: str, corpus: Path, limit: int | None, repeats: int, python: Path | None, quiet: bool = False
) -> dict[str, Any] | None:
    """The same first `limit` documents through datatrove_baseline.py `--mode` run by `python`; None without it."""
    if python is None:
        print("datatrove side skipped: no --datatrove-python given (see benchmarks/README.md)")
        return None
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        cmd = [str(python), str(REPO / "benchmarks" / "datatrove_baseline.py"), "--mode", mode,
               "--input", str(corpus / "docs.jsonl.zst"), "--repeats", str(repeats), "--json-out", result.name]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        output = subprocess.DEVNULL if quiet else None
        subprocess.run(cmd, check=True, stdout=output, stderr=output)
        return json.loads(Path(result.name).read_text())
