"""The model card: one JSON file next to each model (`domain.ftz` -> `domain.json`), one implementation.

It records what a model is (labels, fastText parameters, preprocessing), what it was trained on
(the data file's SHA-256, size and label counts, the split), how well it did on the validation
split, the chosen threshold and the exact command that produced it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CARD_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    name: str
    labels: tuple[str, ...]
    positive_label: str | None  # binary models: the label the threshold and ROC-AUC are about
    threshold: float | None  # binary models: keep when P(positive_label) >= threshold
    fasttext: dict[str, Any]  # the parameters the model was trained with (auto-tuned ones included)
    preprocessing: dict[str, Any]  # function and max_chars: inference must use the same
    data: dict[str, Any]  # path, sha256, bytes, rows, label_counts, text_fields, label_field
    split: dict[str, Any]  # split_field, valid_fraction, seed, train_rows, valid_rows
    metrics: dict[str, Any]  # on the validation split (classifiers/metrics.py:evaluate)
    training_seconds: float  # wall clock of training and quantisation
    training_cpu_seconds: float  # CPU time of the same (the per-core figure)
    quantized: bool
    model_bytes: int
    command: str  # the command that produced the model
    versions: dict[str, str] = field(default_factory=dict)
    card_version: int = CARD_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "labels": list(self.labels)}


def card_path(model_path: str | Path) -> Path:
    """Where a model's card lives: same folder and stem, `.json` suffix."""
    return Path(model_path).with_suffix(".json")


def write_card(card: ModelCard, path: str | Path) -> None:
    Path(path).write_text(json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_card(path: str | Path) -> ModelCard:
    """Load a card; a missing or malformed file is a ValueError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"model card not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"model card {path} is not valid JSON: {exc.msg}") from None
    known = {f.name for f in fields(ModelCard)}
    missing = sorted(
        f.name for f in fields(ModelCard) if f.name not in data and f.name not in ("versions", "card_version")
    )
    if not isinstance(data, dict) or missing:
        raise ValueError(f"model card {path} lacks {', '.join(missing) or 'an object'}")
    card = {k: v for k, v in data.items() if k in known}
    return ModelCard(**{**card, "labels": tuple(card["labels"])})
