"""Shared fixtures. The suite reads nothing outside the repository: everything it needs lives in tests/data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# presidio imports `transformers` when it is installed (the dev extra has it for the tokenizer interop
# test), and transformers then imports TensorFlow (keras-hub's dependency): 6 s per process that
# imports the PII stage, Beam's worker processes included. Nothing here needs transformers' TF side.
os.environ.setdefault("USE_TF", "0")

# Property tests draw the same examples on every machine and every run, and write no example database
# into the checkout: a CI failure reproduces locally as it is.
settings.register_profile("gemmaflow", derandomize=True, database=None, deadline=None)
settings.load_profile("gemmaflow")

DATA = Path(__file__).parent / "data"


@pytest.fixture
def fixture_corpus() -> Path:
    return DATA / "fixture_corpus.jsonl"


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Write records (dicts, or raw strings written as-is) one per line."""
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(record if isinstance(record, str) else json.dumps(record, ensure_ascii=False))
            fh.write("\n")
    return path
