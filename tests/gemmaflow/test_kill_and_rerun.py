"""SIGKILL each long-running command at seeded points, then rerun it: the next run resumes (train) or
starts over (`--overwrite`) and gives what an uninterrupted run gives, the commands downstream refuse
the killed output in one line, and nothing half-written is ever taken for complete.

Kill points are drawn from a seeded RNG: early, middle and late fractions of an uninterrupted run's
measured duration for the Beam jobs and the tokenizer, and early, middle and late steps for the
trainer (whose later runs reuse the first one's compiled programs, so time would not place them).
Each command is killed three times in a row, each rerun over what the previous kill left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import main
from gemmaflow.core.run_markers import COMPLETE_FILE
from gemmaflow.pipeline.run_output import list_files
from tests.conftest import DATA
from tests.model.shard_fixtures import write_shards
from tests.tokenizer_train.conftest import make_documents, write_curated

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SEED = 20240607
TIMEOUT = 300  # seconds for any one run: far above what these tiny inputs need


@dataclasses.dataclass(frozen=True)
class Ran:
    code: int  # -SIGKILL when the kill landed, else the command's own exit code
    stdout: str
    stderr: str
    seconds: float


def kill_fractions(salt: str) -> list[float]:
    """An early, a middle and a late point of a run, as fractions of its duration."""
    rng = random.Random(f"{SEED}-{salt}")
    return [rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.65), rng.uniform(0.7, 0.95)]


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    """The child's environment, with its own temporary folder so that leftovers can be seen."""
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "PYTHONPATH": str(REPO), "USE_TF": "0", "JAX_PLATFORMS": "cpu", "TMPDIR": str(scratch),
            **extra}  # fmt: skip


def gemmaflow(args: list[str], env: dict[str, str], kill_after: float | None = None, kill_on: str | None = None) -> Ran:
    """Run the real CLI in a subprocess; SIGKILL it `kill_after` seconds in, or once a stdout line starts
    with `kill_on` (plus a seeded moment), unless it exits first. Output goes to files, never to a pipe
    nobody drains, so the child is never held up writing it."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        command = [sys.executable, "-m", "gemmaflow.cli", *args]
        stdout = subprocess.PIPE if kill_on is not None else out
        process = subprocess.Popen(command, stdout=stdout, stderr=err, text=True, env=env, cwd=REPO)
        if process.stdout is not None:
            for line in process.stdout:
                out.write(line)
                if line.startswith(str(kill_on)):
                    time.sleep(random.Random(f"{SEED}-{kill_on}").uniform(0, 0.2))
                    process.send_signal(signal.SIGKILL)
                    break
            out.write(process.stdout.read())
            process.stdout.close()
        try:
            process.wait(timeout=TIMEOUT if kill_after is None else kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=TIMEOUT)
        out.seek(0)
        err.seek(0)
        return Ran(code, out.read(), err.read(), time.perf_counter() - started)


def assert_clean_exit(ran: Ran) -> None:
    assert ran.code == 0, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr


def assert_refused(code: int, err: str, *words: str) -> None:
    """Exit code 2 and one line saying why (Beam's own warnings may come before it), never a traceback."""
    errors = [line for line in err.splitlines() if line.startswith("gemmaflow ")]
    assert code == 2 and len(errors) == 1, err[-3000:]
    assert "Traceback" not in err
    assert all(word in errors[0] for word in words), errors[0]


def refused_in_process(capsys: pytest.CaptureFixture[str], args: list[str], *words: str) -> None:
    capsys.readouterr()
    code = main(args)
    assert_refused(code, capsys.readouterr().err, *words)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curated folder written by hand (no run markers): what the tokenizer and pack read."""
    return write_curated(tmp_path_factory.mktemp("documents"), make_documents())


@pytest.fixture(scope="module")
def tokenizer_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "tokenizer.yaml"
    path.write_text("sample: {byte_budget: 10000000, heldout_fraction: 0.1}\ntrainer: {vocab_size: 1000, threads: 2}\n")
    return path


@pytest.fixture(scope="module")
def tokenizer(documents: Path, tokenizer_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    assert main(["tokenizer", "train", "--input", str(documents), "--out", str(out), "--config",
                 str(tokenizer_config)]) == 0  # fmt: skip
    return out / "tokenizer.model"


# --- curate --------------------------------------------------------------------------------------


def curated_rows(out: Path) -> list[tuple[str, str]]:
    files = sorted((out / "data").glob("*.parquet"))
    columns = [pq.read_table(f, columns=["id", "text"]).to_pydict() for f in files]
    return sorted(row for table in columns for row in zip(table["id"], table["text"], strict=True))


def test_curate_killed_then_rerun_with_overwrite(tmp_path, capsys):
    config = tmp_path / "curate.yaml"
    config.write_text("pii: {enabled: false}\n")  # presidio's start-up is most of a tiny run's time
    args = ["curate", "--input", str(DATA / "fixture_corpus.jsonl"), "--config", str(config), "--quiet"]
    env = environment(tmp_path)
    reference = tmp_path / "reference"
    uninterrupted = gemmaflow([*args, "--output", str(reference)], env)
    assert_clean_exit(uninterrupted)
    expected_rows, expected_files = curated_rows(reference), list_files(str(reference))
    assert expected_rows

    out = tmp_path / "out"
    for fraction in kill_fractions("curate"):
        killed = gemmaflow([*args, "--output", str(out), "--overwrite"], env, fraction * uninterrupted.seconds)
        if (out / COMPLETE_FILE).exists():  # the kill came after the marker: then it is the whole run
            assert curated_rows(out) == expected_rows and list_files(str(out)) == expected_files
            continue
        assert killed.code == -signal.SIGKILL, killed.stderr[-3000:]
        parquet = str(out / "data" / "*.parquet")
        refused_in_process(capsys, ["tokenizer", "train", "--input", str(out), "--out", str(tmp_path / "tok")])
        refused_in_process(capsys, ["pack", "--input", parquet, "--tokenizer", str(tmp_path / "tok.model"),
                                    "--output", str(tmp_path / "packed")])  # fmt: skip
        refused_in_process(capsys, ["curate", "--input", parquet, "--output", str(tmp_path / "again")])
        if list_files(str(out)):
            refused_in_process(capsys, [*args, "--output", str(out)], "--overwrite")

    rerun = gemmaflow([*args, "--output", str(out), "--overwrite"], env)
    assert_clean_exit(rerun)
    assert curated_rows(out) == expected_rows
    assert list_files(str(out)) == expected_files  # nothing the killed runs left behind


# --- tokenizer train -----------------------------------------------------------------------------


def test_tokenizer_train_killed_then_rerun_with_overwrite(documents, tokenizer_config, tokenizer, tmp_path, capsys):
    args = ["tokenizer", "train", "--input", str(documents), "--config", str(tokenizer_config)]
    env = environment(tmp_path)
    reference = tmp_path / "reference"
    uninterrupted = gemmaflow([*args, "--out", str(reference)], env)
    assert_clean_exit(uninterrupted)
    expected = sha256(reference / "tokenizer.model")
    assert expected == sha256(tokenizer)  # the same input and config give the same model

    out = tmp_path / "out"
    for fraction in kill_fractions("tokenizer"):
        gemmaflow([*args, "--out", str(out), "--overwrite"], env, fraction * uninterrupted.seconds)
        model = out / "tokenizer.model"
        if model.exists():  # the file pack reads is there only when the run finished, and then whole
            assert sha256(model) == expected and (out / "tokenizer_card.json").exists()
            continue
        refused_in_process(capsys, ["pack", "--input", str(documents / "data" / "*.parquet"), "--tokenizer",
                                    str(model), "--output", str(tmp_path / "packed")])  # fmt: skip
        if out.exists() and any(out.iterdir()):
            refused_in_process(capsys, [*args, "--out", str(out)], "--overwrite")

    rerun = gemmaflow([*args, "--out", str(out), "--overwrite"], env)
    assert_clean_exit(rerun)
    assert sha256(out / "tokenizer.model") == expected
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    assert not any((tmp_path / "scratch").iterdir())  # the killed runs' sampled text is gone


# --- pack ----------------------------------------------------------------------------------------


def test_pack_killed_then_rerun_with_overwrite(documents, tokenizer, tmp_path, capsys):
    config = tmp_path / "pack.yaml"
    config.write_text("packing: {seq_len: 64, validation_fraction: 0.1}\n"
                      "output: {sequences_per_shard: 512, row_group_size: 64}\n")  # fmt: skip
    args = ["pack", "--input", str(documents / "data" / "*.parquet"), "--tokenizer", str(tokenizer),
            "--config", str(config), "--quiet"]  # fmt: skip
    env = environment(tmp_path)
    reference = tmp_path / "reference"
    uninterrupted = gemmaflow([*args, "--output", str(reference)], env)
    assert_clean_exit(uninterrupted)
    expected_manifest = (reference / "manifest.json").read_text()  # every shard's SHA-256 among the rest
    expected_files = list_files(str(reference))

    out = tmp_path / "out"
    for fraction in kill_fractions("pack"):
        killed = gemmaflow([*args, "--output", str(out), "--overwrite"], env, fraction * uninterrupted.seconds)
        if (out / COMPLETE_FILE).exists():
            assert (out / "manifest.json").read_text() == expected_manifest
            continue
        assert killed.code == -signal.SIGKILL, killed.stderr[-3000:]
        refused_in_process(capsys, ["train", "--shards", str(out), "--out", str(tmp_path / "train")])
        if list_files(str(out)):
            refused_in_process(capsys, [*args, "--output", str(out)], "--overwrite")

    rerun = gemmaflow([*args, "--output", str(out), "--overwrite"], env)
    assert_clean_exit(rerun)
    assert (out / "manifest.json").read_text() == expected_manifest
    assert list_files(str(out)) == expected_files


# --- train ---------------------------------------------------------------------------------------

STEPS = 24


def step_losses(out: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {entry["step"]: entry["loss"] for entry in lines if "loss" in entry}


def kill_steps() -> list[int]:
    """An early step (before the first checkpoint), a middle one and a late one (up to the last, after
    which come its checkpoint, the final evaluation and the saved model)."""
    rng = random.Random(f"{SEED}-train")
    return [rng.randint(1, 3), rng.randint(9, 15), rng.randint(21, STEPS)]


def test_train_killed_then_resumed_reaches_the_same_losses(tmp_path, capsys):
    from gemmaflow.model.checkpoint import CheckpointStore

    shards = write_shards(tmp_path / "shards", seq_len=32, vocab_size=64)
    config = tmp_path / "train.yaml"
    config.write_text(f"model: {{preset: tiny, num_layers: 1}}\nsteps: {STEPS}\nbatch_size: 4\ncheckpoint_every: 4\n"
                      "keep_checkpoints: 2\neval_every: 0\neval_batches: 1\nlog_every: 1\n")  # fmt: skip
    args = ["train", "--shards", str(shards), "--config", str(config)]
    # Every run shares compiled programs (a cache hit runs the very executable a fresh compile would
    # produce), which keeps resumed losses bit-for-bit comparable and the reruns short.
    env = environment(
        tmp_path,
        JAX_COMPILATION_CACHE_DIR=str(tmp_path / "compiled"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    reference = tmp_path / "reference"
    assert_clean_exit(gemmaflow([*args, "--out", str(reference)], env))
    expected = step_losses(reference)
    assert sorted(expected) == list(range(1, STEPS + 1))

    out = tmp_path / "out"
    set_aside = set()  # steps a kill left damaged: the next --resume must set them aside, never restore them
    for attempt, step in enumerate(kill_steps()):
        killed = gemmaflow([*args, "--out", str(out), *(["--resume"] if attempt else [])], env, kill_on=f"step {step} ")
        if killed.code == 0:  # the late kill can come after the run ended; then it is the whole run
            assert f"done: step {STEPS}," in killed.stdout
            continue
        assert killed.code == -signal.SIGKILL, killed.stderr[-3000:]
        store = CheckpointStore(out / "checkpoints", keep=STEPS)
        whole = store.latest_whole_step()
        set_aside.update(s for s in store.steps() if whole is None or s > whole)
        if store.steps():
            refused_in_process(capsys, [*args, "--out", str(out)], "--resume")
        capsys.readouterr()
        code = main(["generate", "--model", str(out), "--token-ids", "2,20,21", "--max-length", "6"])
        if whole is None:  # nothing whole to load: refused; else the newest whole checkpoint is used
            assert_refused(code, capsys.readouterr().err)
        else:
            assert code == 0, capsys.readouterr().err

    resumed = gemmaflow([*args, "--out", str(out), "--resume"], env)
    assert_clean_exit(resumed)
    assert f"done: step {STEPS}," in resumed.stdout
    assert step_losses(out) == expected  # every step, the killed runs' and the resumed ones', bit for bit
    names = {p.name for p in (out / "checkpoints").iterdir()}
    assert {name for name in names if not name.startswith("corrupt_")} == {str(STEPS - 4), str(STEPS)}, names
    assert all(any(name.split(".")[0] == f"corrupt_{s}" for name in names) for s in set_aside), (set_aside, names)
    assert CheckpointStore(out / "checkpoints", keep=STEPS).latest_whole_step() == STEPS
    assert not [p for p in out.rglob("*.partial")]
