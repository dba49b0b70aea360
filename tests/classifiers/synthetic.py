"""Small generated labeled sets and models trained on them (nothing read from outside tests/).

Texts mix words from a per-label vocabulary with words shared by every label, so a model must learn
which words matter. The safety set uses made-up marker words: no toxic text is shipped.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from gemmaflow.classifiers.config import FastTextParams, TrainConfig
from gemmaflow.classifiers.train import train_classifier

SHARED_WORDS = [f"w{i}" for i in range(300)]  # words every label uses
CUES = {  # per label: a few real cue words plus made-up ones, so the vocabulary is not tiny
    "web": "river city museum garden history travel weather market festival library".split(),
    "code": "def return { } ; int void import class while".split(),
    "math": "\\frac \\int \\sum $ ^ _ theorem lemma proof equation".split(),
    "good": "careful explanation describes reference example section clearly chapter".split(),
    "junk": "cheap click buy now best deal free win casino offer".split(),
    "ok": "thanks please helpful kind agree question answer share".split(),
    "toxic": "zorblat grimsnark vexmoth blargon".split(),  # stand-ins for a real toxicity vocabulary
}
VOCAB = {label: words + [f"{label}{i}" for i in range(30)] for label, words in CUES.items()}
SMALL_PARAMS = FastTextParams(dim=16, epoch=30, bucket=20_000, lr=0.1)


def labeled_rows(labels: list[str], n_per_label: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n_per_label):
        for label in labels:
            words = [rng.choice(VOCAB[label]) for _ in range(12)] + [rng.choice(SHARED_WORDS) for _ in range(24)]
            rng.shuffle(words)
            lines = [" ".join(words[j : j + 8]) for j in range(0, len(words), 8)]
            rows.append({"text": "\n".join(lines), "label": label, "source": f"src-{label}-{i % 25}"})
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def train_small(folder: Path, name: str, labels: list[str], n_per_label: int = 150, **config: object) -> Path:
    """Train `name`.bin on a generated set of `labels` in `folder`; returns the model path."""
    data = write_rows(folder / f"{name}.jsonl", labeled_rows(labels, n_per_label))
    train_config = TrainConfig(split_field="source", fasttext=SMALL_PARAMS, **config)  # type: ignore[arg-type]
    out = folder / f"{name}.bin"
    train_classifier(data, out, train_config, name=name, command=f"test {name}")
    return out
