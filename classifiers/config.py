"""Typed training configuration for `gemmaflow classifier train` (YAML via gemmaflow/configio.py).

Defaults suit document classification on a CPU in seconds: short dense vectors, word bigrams, no
character n-grams (they multiply the cost per token and help little on whole documents), one
training thread (fastText's Hogwild updates make multi-threaded training non-deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gemmaflow.classifiers.preprocess import DEFAULT_MAX_CHARS
from gemmaflow.classifiers.split import DEFAULT_SPLIT_SEED
from gemmaflow.core.configio import load_yaml


@dataclass(frozen=True)
class FastTextParams:
    """fastText supervised hyper-parameters (names as in fastText's Python API, snake-cased)."""

    lr: float = 0.5
    epoch: int = 10
    dim: int = 32
    word_ngrams: int = 2
    min_count: int = 2
    minn: int = 0
    maxn: int = 0
    bucket: int = 200_000
    loss: Literal["softmax", "ova", "hs", "ns"] = "softmax"  # softmax: probabilities over labels sum to 1
    thread: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epoch < 1 or self.dim < 1 or self.word_ngrams < 1 or self.thread < 1:
            raise ValueError("lr, epoch, dim, word_ngrams and thread must be positive")

    def as_fasttext_kwargs(self) -> dict[str, object]:
        return {
            "lr": self.lr, "epoch": self.epoch, "dim": self.dim, "wordNgrams": self.word_ngrams,
            "minCount": self.min_count, "minn": self.minn, "maxn": self.maxn, "bucket": self.bucket,
            "loss": self.loss, "thread": self.thread, "seed": self.seed,
        }  # fmt: skip


@dataclass(frozen=True)
class QuantizeParams:
    """Product quantisation to a `.ftz` file (`--quantize`): about 10x smaller, nearly as accurate."""

    enabled: bool = False
    cutoff: int = 100_000  # keep the most important words and n-grams; 0 keeps all
    retrain: bool = True  # fine-tune the kept rows after the cutoff
    qnorm: bool = True
    dsub: int = 2


@dataclass(frozen=True)
class TrainConfig:
    """What `gemmaflow classifier train` reads, how it splits, trains and picks a threshold."""

    text_fields: tuple[str, ...] = ("text",)  # several fields (instruction, response) are joined by newlines
    label_field: str = "label"
    split_field: str = ""  # group key of the split (a source); empty: a hash of the text
    valid_fraction: float = 0.2
    split_seed: str = DEFAULT_SPLIT_SEED
    max_chars: int = DEFAULT_MAX_CHARS  # preprocessing reads this prefix; recorded in the card for inference
    fasttext: FastTextParams = field(default_factory=FastTextParams)
    quantize: QuantizeParams = field(default_factory=QuantizeParams)
    # fastText auto-tuning against the validation split, for this many seconds (0: off). It is
    # time-bound and multi-threaded, so its result is not reproducible; the card records what it chose.
    autotune_seconds: int = 0
    # Binary models: the label whose probability is the score (ROC-AUC, threshold). Empty: the rarer label.
    positive_label: str = ""
    # Binary models: the threshold is the highest that keeps at least this share of the validation
    # positives (0: the threshold with the best F1 of the positive label).
    min_recall: float = 0.0

    def __post_init__(self) -> None:
        if not self.text_fields:
            raise ValueError("text_fields must name at least one field")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError("valid_fraction must be in (0, 1)")
        if not 0.0 <= self.min_recall <= 1.0:
            raise ValueError("min_recall must be in [0, 1]")
        if self.max_chars < 1:
            raise ValueError("max_chars must be positive")


def load_train_config(path: str | Path | None = None, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Defaults, overridden by the YAML at `path`, then by dotted `overrides` (the command-line flags)."""
    return load_yaml(TrainConfig, path, overrides)
