"""Output ownership: --overwrite deletes only what a gemmaflow run wrote, and the path is never a glob."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gemmaflow.cli import main
from gemmaflow.pipeline.run_output import (
    COMPLETE_FILE,
    OWNER_FILE,
    OutputExistsError,
    list_files,
    prepare_output,
    write_completion_marker,
)


def tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_a_folder_that_is_not_ours_is_never_cleared(tmp_path):
    user = ["notes/important.txt", ".git/HEAD", ".git/config", "src/app.py", "stats.json", "data/mine.parquet"]
    tree(tmp_path, user)
    with pytest.raises(OutputExistsError, match="did not write"):
        prepare_output(str(tmp_path), overwrite=True)
    assert sorted(list_files(str(tmp_path))) == sorted(user)


def test_overwrite_of_a_finished_run_deletes_exactly_its_files(tmp_path):
    prepare_output(str(tmp_path), overwrite=False, job="curate")
    tree(tmp_path, ["data/part-0.parquet", "rejected/part-0.parquet", "stats.json", "_stats/counts.json"])
    write_completion_marker(str(tmp_path), {"job": "curate"})
    marker = json.loads((tmp_path / COMPLETE_FILE).read_text())
    assert OWNER_FILE in marker["files"] and "data/part-0.parquet" in marker["files"]

    tree(tmp_path, ["data/notes.txt"])  # a user's file inside our folder: refused, nothing deleted
    with pytest.raises(OutputExistsError, match=r"data/notes\.txt"):
        prepare_output(str(tmp_path), overwrite=True)
    assert (tmp_path / "data" / "part-0.parquet").exists() and (tmp_path / COMPLETE_FILE).exists()

    (tmp_path / "data" / "notes.txt").unlink()
    tree(tmp_path, ["beam-temp-part-123/shard"])  # a killed sink's temporary folder is ours
    prepare_output(str(tmp_path), overwrite=True, job="curate")
    assert list_files(str(tmp_path)) == [OWNER_FILE]


def test_a_killed_run_is_cleared_by_the_names_our_jobs_write(tmp_path):
    tree(tmp_path, [OWNER_FILE, "data/part-0.parquet", "_stats/counts.json", "beam-temp-x/y", "train/shard-0"])
    prepare_output(str(tmp_path), overwrite=True)
    assert list_files(str(tmp_path)) == [OWNER_FILE]
    tree(tmp_path, ["my-thesis.tex"])
    with pytest.raises(OutputExistsError, match=r"my-thesis\.tex"):
        prepare_output(str(tmp_path), overwrite=True)


def test_the_output_path_is_not_a_glob(tmp_path):
    sibling = tmp_path / "gl" / "out1"
    tree(sibling, ["sub/file.txt", OWNER_FILE, "data/part-0.parquet"])
    target = tmp_path / "gl" / "out[1]"
    prepare_output(str(target), overwrite=True)  # empty: nothing to refuse, nothing of out1 touched
    assert sorted(list_files(str(sibling))) == sorted(["sub/file.txt", OWNER_FILE, "data/part-0.parquet"])
    assert list_files(str(target)) == [OWNER_FILE]


def test_an_output_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "out"
    file.write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        prepare_output(str(file), overwrite=True)


def test_curate_overwrite_on_a_user_folder_exits_2_and_deletes_nothing(tmp_path, fixture_corpus, capsys):
    tree(tmp_path, ["notes/important.txt", ".git/HEAD", "src/app.py"])
    code = main(["curate", "--input", str(fixture_corpus), "--output", str(tmp_path), "--overwrite", "--quiet"])
    assert code == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(list_files(str(tmp_path))) == [".git/HEAD", "notes/important.txt", "src/app.py"]
    out = tmp_path / "run"
    assert main(["curate", "--input", str(fixture_corpus), "--output", str(out), "--quiet"]) == 0
    assert main(["curate", "--input", str(fixture_corpus), "--output", str(out), "--overwrite", "--quiet"]) == 0
    assert json.loads((out / COMPLETE_FILE).read_text())["job"] == "curate"


def test_an_overwrite_killed_while_deleting_leaves_a_run_that_did_not_finish(tmp_path, monkeypatch):
    from apache_beam.io.filesystems import FileSystems

    from gemmaflow.core.run_markers import unfinished_run

    tree(tmp_path, [OWNER_FILE, "data/part-0.parquet", "data/part-1.parquet", "stats.json"])  # a killed run
    delete = FileSystems.delete

    def killed_after_one(paths: list[str]) -> None:
        delete(paths[:1])
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after this point runs

    monkeypatch.setattr(FileSystems, "delete", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        prepare_output(str(tmp_path), overwrite=True, job="curate")
    monkeypatch.undo()
    assert OWNER_FILE in list_files(str(tmp_path))  # still ours: readers refuse it, --overwrite clears it
    assert unfinished_run(str(tmp_path / "data" / "part-1.parquet")) == str(tmp_path)
    prepare_output(str(tmp_path), overwrite=True, job="curate")
    assert list_files(str(tmp_path)) == [OWNER_FILE]
