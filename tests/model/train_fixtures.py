"""One small training setup shared by the trainer tests (in-process and subprocess), so the
subprocess runs can be compared against the in-process reference run."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import yaml

from gemmaflow.model.train import TrainResult, train
from gemmaflow.model.train_config import load_train_config

REPO = Path(__file__).resolve().parents[2]

# Tiny: one compile of a 1-layer model on 32-token rows; 2 micro-batches exercise accumulation, and
# each micro-batch (4 rows) splits over 4 devices.
BASE_CONFIG = {
    "model": {"preset": "tiny", "num_layers": 1},
    "optimizer": {"learning_rate": 1e-2, "warmup_fraction": 0.1},
    "steps": 12, "batch_size": 8, "grad_accum_steps": 2, "seed": 3,
    "checkpoint_every": 2, "keep_checkpoints": 2, "eval_every": 6, "eval_batches": 2,
}


def write_config(path: Path, **changes: object) -> Path:
    config = json.loads(json.dumps(BASE_CONFIG))
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


def run(shards: Path, config_path: Path, out: Path, resume: bool = False) -> TrainResult:
    return train(shards, load_train_config(config_path), out, resume=resume, stream=io.StringIO())


def losses(out: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {entry["step"]: entry["loss"] for entry in lines if "loss" in entry}


def environment(cache: Path | None = None, **extra: str) -> dict[str, str]:
    """A child trainer's environment; with `cache`, children share compiled programs (a cache hit runs the
    very executable a fresh compile would produce, so results stay bit-for-bit comparable)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO), **extra}
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env
