"""Runs that finish with nothing usable fail with one line (exit 1) and leave no completion marker."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import main
from gemmaflow.pipeline.jobs.beam_job import unusable
from gemmaflow.pipeline.run_output import COMPLETE_FILE


def test_unusable_counts():
    assert "no record" in unusable({"records_read": 0, "dead_lettered": 0}, 1.0)
    assert "every one" in unusable({"records_read": 3, "dead_lettered": 3}, 1.0)
    assert unusable({"records_read": 4, "dead_lettered": 3}, 1.0) is None
    assert "75.0% > max_dead_letter_fraction 50.0%" in unusable({"records_read": 4, "dead_lettered": 3}, 0.5)


def _empty(folder: Path) -> Path:
    path = folder / "empty.jsonl"
    path.write_text("")
    return path


def _wrong_schema(folder: Path) -> Path:
    path = folder / "wrong.parquet"
    pq.write_table(pa.table({"body": ["some text", "more text"]}), path)
    return path


def _not_zstd(folder: Path) -> Path:
    path = folder / "fake.jsonl.zst"
    path.write_bytes(gzip.compress(b'{"text": "hello"}\n'))
    return path


@pytest.mark.parametrize("make", [_empty, _wrong_schema, _not_zstd])
def test_curate_with_nothing_usable_exits_1_without_marker(tmp_path, capsys, make):
    out = tmp_path / "out"
    assert main(["curate", "--input", str(make(tmp_path)), "--output", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing usable" in err[0]
    assert (out / "stats.json").exists() and not (out / COMPLETE_FILE).exists()


def test_max_dead_letter_fraction(tmp_path, capsys):
    good = {"id": "g", "text": "Herons wait in the shallows for fish, and strike with their long bills at once."}
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(good) + "\nnot json\nnot json either\n")
    config = tmp_path / "c.yaml"
    config.write_text("read: {max_dead_letter_fraction: 0.5}\n")
    strict = ["--config", str(config)]
    assert main(["curate", "--input", str(path), "--output", str(tmp_path / "a"), "--quiet", *strict]) == 1
    assert "66.7% > max_dead_letter_fraction 50.0%" in capsys.readouterr().err
    assert main(["curate", "--input", str(path), "--output", str(tmp_path / "b"), "--quiet"]) == 0
