"""Every command that reads another's output refuses a run that did not finish (no _COMPLETE.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemmaflow.cli import main
from gemmaflow.core.run_markers import COMPLETE_FILE, OWNER_FILE, unfinished_run


@pytest.fixture(scope="module")
def killed_curate(tmp_path_factory, request) -> Path:
    """A finished curate output with its completion marker taken away: what a killed run leaves."""
    from tests.conftest import DATA

    out = tmp_path_factory.mktemp("killed") / "curated"
    assert main(["curate", "--input", str(DATA / "fixture_corpus.jsonl"), "--output", str(out), "--quiet"]) == 0
    (out / COMPLETE_FILE).unlink()
    return out


def test_unfinished_run_finds_the_nearest_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / OWNER_FILE).write_text("{}")
    part = run / "data" / "part-0.parquet"
    part.write_text("x")
    assert unfinished_run(str(part)) == str(run)
    (run / COMPLETE_FILE).write_text("{}")
    assert unfinished_run(str(part)) is None
    assert unfinished_run(str(tmp_path)) is None  # a folder made by hand is read


def test_curate_refuses_a_killed_runs_output(killed_curate, tmp_path, capsys):
    code = main(["curate", "--input", str(killed_curate / "data" / "*.parquet"), "--output", str(tmp_path / "o")])
    assert code == 2 and "did not finish" in capsys.readouterr().err


def test_tokenizer_refuses_a_killed_curate(killed_curate, tmp_path, capsys):
    code = main(["tokenizer", "train", "--input", str(killed_curate), "--out", str(tmp_path / "tok")])
    assert code == 2 and "did not finish" in capsys.readouterr().err
    assert not (tmp_path / "tok").exists()


def test_train_refuses_unfinished_shards(tmp_path, capsys):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / OWNER_FILE).write_text("{}")
    (shards / "manifest.json").write_text("{}")
    assert main(["train", "--shards", str(shards), "--out", str(tmp_path / "t")]) == 2
    assert "did not finish" in capsys.readouterr().err


def test_tokenizer_out_that_is_a_file_fails_before_training(tmp_path, capsys):
    from tests.conftest import DATA

    out = tmp_path / "tok"
    out.write_text("not a folder")
    assert main(["tokenizer", "train", "--input", str(DATA / "fixture_corpus.jsonl"), "--out", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err and out.read_text() == "not a folder"
