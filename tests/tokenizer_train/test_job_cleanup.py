"""A killed tokenizer run's sampled text is removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys

from gemmaflow.tokenizer_train.job import OWNER_PID_FILE, TEXT_DIR_PREFIX, remove_stale_text_dirs


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
