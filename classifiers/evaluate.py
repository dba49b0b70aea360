"""`gemmaflow classifier eval`: a model's metrics on labeled JSONL, the same figures its card holds.

Field names and the split default to what the model card recorded, so evaluating the training
file with `split="valid"` reproduces the card's validation figures, and `split="all"` scores any
other labeled file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gemmaflow.classifiers.card import ModelCard
from gemmaflow.classifiers.config import TrainConfig
from gemmaflow.classifiers.data import DataError, read_examples
from gemmaflow.classifiers.metrics import evaluate
from gemmaflow.classifiers.model import open_classifier
from gemmaflow.classifiers.train import predict_examples, split_examples

Split = Literal["all", "train", "valid"]


@dataclass(frozen=True)
class EvalRequest:
    model: str
    data: str
    text_fields: tuple[str, ...] = ()  # empty: the card's
    label_field: str = ""  # empty: the card's, else "label"
    split: Split = "all"  # train/valid: the card's split of the data (same file, same group field and seed)
    split_field: str = ""  # empty: the card's
    positive_label: str = ""  # empty: the card's
    threshold: float | None = None  # None: the card's


def _split_config(card: ModelCard | None, request: EvalRequest) -> TrainConfig:
    if card is None:
        raise DataError(f"--split {request.split} needs the model card next to {request.model}")
    field = request.split_field or card.split["split_field"]
    return TrainConfig(
        split_field="" if field.startswith("(") else field,
        valid_fraction=card.split["valid_fraction"],
        split_seed=card.split["seed"],
    )


def evaluate_model(request: EvalRequest) -> dict[str, Any]:
    """Metrics of `request.model` on `request.data` (see classifiers/metrics.py:evaluate)."""
    model = open_classifier(request.model)
    card = model.card
    text_fields = request.text_fields or (tuple(card.data["text_fields"]) if card else ("text",))
    label_field = request.label_field or (card.data["label_field"] if card else "label")
    split_field = ""
    if request.split != "all":
        split_config = _split_config(card, request)
        split_field = split_config.split_field
    examples = read_examples(Path(request.data), text_fields, label_field, split_field)
    if request.split != "all":
        train, valid = split_examples(examples, split_config)
        examples = valid if request.split == "valid" else train
    if not examples:
        raise DataError(f"{request.data}: no examples in split {request.split}")
    positive = request.positive_label or (card.positive_label if card else None)
    if positive is None and len(model.labels) == 2:
        positive = model.labels[0]
    if positive is not None and positive not in model.labels:
        raise DataError(f"positive label {positive!r} is not a label of the model ({', '.join(model.labels)})")
    threshold = request.threshold if request.threshold is not None else (card.threshold if card else None)
    y_true, proba = predict_examples(model, examples)
    return evaluate(model.labels, y_true, proba, positive, threshold)
