"""`gemmaflow train --distributed` with two real processes on 127.0.0.1 (one CPU device each, Gloo between them).

One launch is killed mid-run and resumed, so a single pair of launches shows every claim: the losses
match one process, the checkpoints hold both processes' halves and restore, a dead peer stops the
survivor instead of hanging it, and the resumed pair finishes as the one process does.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from gemmaflow import cli
from gemmaflow.model.api import GemmaLM
from tests.model.shard_fixtures import write_shards
from tests.model.train_fixtures import REPO, environment, losses, run, write_config

STEPS = 10
PEER_TIMEOUT = 10  # seconds a dead process goes unnoticed; the survivor must be gone soon after


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(shards: Path, config: Path, out: Path, logs: Path, *flags: str) -> list[subprocess.Popen]:
    """Processes 0 and 1 of one job, each on one CPU device, the parameters split over both (FSDP 2);
    their output goes to logs/<id>.log, so waiting on it never blocks past a deadline."""
    logs.mkdir(parents=True, exist_ok=True)
    coordinator = f"127.0.0.1:{free_port()}"
    env = environment(out.parent / "compiled", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    train = [sys.executable, "-m", "gemmaflow.cli", "train", "--shards", str(shards), "--config", str(config)]
    job = ["--out", str(out), "--set", "mesh.fsdp=2", "--distributed", "--coordinator", coordinator, *flags]
    processes = []
    for process_id in range(2):
        command = [*train, *job, "--num-processes", "2", "--process-id", str(process_id)]
        with (logs / f"{process_id}.log").open("w") as log:
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO))
    return processes


def wait_for_line(log: Path, prefix: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(line.startswith(prefix) for line in log.read_text().splitlines()):
        assert process.poll() is None, f"exited {process.returncode} before {prefix!r}:\n{log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {prefix!r} within {timeout} s:\n{log.read_text()[-2000:]}"
        time.sleep(0.05)


def finish(processes: list[subprocess.Popen], timeout: float) -> list[int]:
    """Exit codes; a process still running at the deadline is killed and fails the test."""
    try:
        return [process.wait(timeout=timeout) for process in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        raise


@pytest.mark.slow
def test_two_processes_match_one_checkpoint_together_and_resume_after_one_is_killed(tmp_path):
    shards = write_shards(tmp_path / "shards", seq_len=32, vocab_size=64)
    config = write_config(tmp_path / "train.yaml", steps=STEPS, eval_every=6, peak_tflops=1.0)
    one = run(shards, config, tmp_path / "one")  # the reference: one process, one device
    out = tmp_path / "two"

    killed = launch(shards, config, out, tmp_path / "killed", "--peer-timeout", str(PEER_TIMEOUT))
    wait_for_line(tmp_path / "killed" / "0.log", "saved checkpoint 2", killed[0], timeout=90)
    killed[1].send_signal(signal.SIGKILL)
    stopped = time.monotonic()
    survivor, victim = finish(killed, timeout=PEER_TIMEOUT + 30)  # no hang: JAX stops the survivor
    assert victim == -signal.SIGKILL and survivor != 0
    assert time.monotonic() - stopped < PEER_TIMEOUT + 30
    assert not (out / "final").exists()  # it really died mid-run

    resumed = launch(shards, config, out, tmp_path / "resumed", "--resume")
    assert finish(resumed, timeout=90) == [0, 0], (tmp_path / "resumed" / "0.log").read_text()[-2000:]
    log = (tmp_path / "resumed" / "0.log").read_text()
    first = int(log.split("resumed from checkpoint ")[1].split()[0])
    assert 2 <= first < STEPS
    quiet = (tmp_path / "resumed" / "1.log").read_text().splitlines()
    assert not [line for line in quiet if line.startswith(("step ", "saved", "done"))]  # process 0 alone reports

    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logged if "loss" in entry] == list(range(1, STEPS + 1))  # each step once
    expected, got = losses(tmp_path / "one"), losses(out)  # steps to `first` from the killed pair, then resumed
    assert [got[step] for step in range(1, STEPS + 1)] == pytest.approx([expected[step] for step in expected], abs=1e-5)
    checkpoint = out / "checkpoints" / str(STEPS) / "params"
    assert sorted(p.name for p in checkpoint.glob("ocdbt.process_*")) == ["ocdbt.process_0", "ocdbt.process_1"]
    trained, reference = GemmaLM.from_pretrained(out), GemmaLM.from_pretrained(one.out_dir)  # final/, in one process
    for ours, theirs in zip(jax.tree.leaves(trained.params), jax.tree.leaves(reference.params), strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5)


def test_process_flags_need_distributed_and_the_variables_must_be_integers(tmp_path, capsys, monkeypatch):
    command = ["train", "--shards", str(tmp_path), "--out", str(tmp_path / "out"), "--coordinator", "127.0.0.1:1"]
    assert cli.main([*command, "--process-id", "0"]) == 2
    assert "need --distributed" in capsys.readouterr().err
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    assert cli.main([*command, "--distributed", "--process-id", "0"]) == 2
    assert "JAX_NUM_PROCESSES must be an integer, got 'two'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
