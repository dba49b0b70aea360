"""Shared fixtures. The suite never reads ../shared: everything it needs lives in tests/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
