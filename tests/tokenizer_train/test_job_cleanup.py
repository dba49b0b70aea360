"""A killed tokenizer run's sampled text is removed by the next run, and its model is never half there."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from gemmaflow.tokenizer_train.job import (
    OUTPUT_FILES,
    OWNER_PID_FILE,
    TEXT_DIR_PREFIX,
    remove_stale_text_dirs,
    train_tokenizer,
)
from tests.tokenizer_train.conftest import small_config


def test_stale_text_folders_of_dead_processes_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    stale = tmp_path / (TEXT_DIR_PREFIX + "killed")
    stale.mkdir()
    (stale / OWNER_PID_FILE).write_text(str(dead_pid))
    (stale / "train.txt").write_text("sampled text of a killed run")
    running = tmp_path / (TEXT_DIR_PREFIX + "running")
    running.mkdir()
    (running / OWNER_PID_FILE).write_text(str(os.getpid()))
    unknown = tmp_path / (TEXT_DIR_PREFIX + "older-version")
    unknown.mkdir()
    assert remove_stale_text_dirs(str(tmp_path)) == [stale]
    assert not stale.exists() and running.exists() and unknown.exists()


def test_an_overwrite_killed_before_its_model_is_whole_leaves_no_model(curated_dir, tmp_path, monkeypatch):
    from fsspec.implementations.local import LocalFileSystem

    out = tmp_path / "tok"
    train_tokenizer(str(curated_dir), str(out), small_config())

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for SIGKILL just before the model's rename

    monkeypatch.setattr(LocalFileSystem, "mv", killed)
    with pytest.raises(KeyboardInterrupt):
        train_tokenizer(str(curated_dir), str(out), small_config(), overwrite=True)
    assert not (out / "tokenizer.model").exists()  # neither the replaced run's model nor a half-written one
    monkeypatch.undo()
    card = train_tokenizer(str(curated_dir), str(out), small_config(), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert hashlib.sha256((out / "tokenizer.model").read_bytes()).hexdigest() == card["model"]["sha256"]
