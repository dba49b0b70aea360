"""`gemmaflow classifier train`: labeled JSONL in, a fastText model and its card out.

Steps: read the examples, split them by a hash of their group key, write both splits preprocessed
(classifiers/preprocess.py, the function inference uses), train (optionally auto-tuned on the
validation split), quantise when asked, then load the saved file back and measure it on the
validation split: the card's figures are those of the exact artifact written.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from gemmaflow.classifiers.card import ModelCard, card_path, write_card
from gemmaflow.classifiers.config import TrainConfig
from gemmaflow.classifiers.data import DataError, Example, file_digest, read_examples
from gemmaflow.classifiers.metrics import choose_threshold, evaluate
from gemmaflow.classifiers.model import LABEL_PREFIX, Classifier, TextClassifier
from gemmaflow.classifiers.preprocess import preprocess
from gemmaflow.classifiers.split import is_validation

# fastText argument names -> TrainConfig.fasttext fields, for recording what auto-tuning chose.
_TUNED_ARGS = {"lr": "lr", "epoch": "epoch", "dim": "dim", "wordNgrams": "word_ngrams", "minCount": "min_count",
               "minn": "minn", "maxn": "maxn", "bucket": "bucket"}  # fmt: skip


class TrainingError(RuntimeError):
    """fastText could not train on this data with these parameters (e.g. it diverged)."""


def _fit(train_file: str, valid_file: str, out: str, params: dict[str, Any], autotune_seconds: int,
         quantize: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """Train (auto-tuned when asked), quantise, save; return the parameters used. Runs in a child process."""
    import fasttext

    if autotune_seconds:
        tune = {k: v for k, v in params.items() if k in ("loss", "thread", "seed")}
        model = fasttext.train_supervised(input=train_file, autotuneValidationFile=valid_file,
                                          autotuneDuration=autotune_seconds, verbose=0, **tune)  # fmt: skip
        params = {**params, **{arg: getattr(model, arg) for arg in _TUNED_ARGS}}
    else:
        model = fasttext.train_supervised(input=train_file, verbose=0, **params)
    if quantize is not None:
        model.quantize(input=train_file, cutoff=quantize["cutoff"], retrain=quantize["retrain"],
                       qnorm=quantize["qnorm"], dsub=quantize["dsub"], thread=params["thread"], verbose=0)  # fmt: skip
    model.save_model(out)
    return params


def _children_cpu_seconds() -> float:
    """CPU time of finished child processes (the training child, once the pool has shut down)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def split_examples(examples: Sequence[Example], config: TrainConfig) -> tuple[list[Example], list[Example]]:
    """(train, validation) by the hash of each example's group key."""
    train, valid = [], []
    for example in examples:
        (valid if is_validation(example.group, config.valid_fraction, config.split_seed) else train).append(example)
    return train, valid


def _write_fasttext_file(examples: Sequence[Example], path: Path, max_chars: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(f"{LABEL_PREFIX}{example.label} {preprocess(example.text, max_chars)}\n")


def _positive_label(labels: Sequence[str], train: Sequence[Example], config: TrainConfig) -> str | None:
    if len(labels) != 2:
        if config.positive_label:
            raise DataError(f"positive_label is for binary models; the data has {len(labels)} labels")
        return None
    if config.positive_label:
        if config.positive_label not in labels:
            raise DataError(
                f"positive_label {config.positive_label!r} is not a label of the data ({', '.join(labels)})"
            )
        return config.positive_label
    counts = Counter(example.label for example in train)
    return min(labels, key=lambda label: (counts[label], label))


def predict_examples(model: TextClassifier, examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    column = {label: i for i, label in enumerate(model.labels)}
    y_true = np.array([column.get(example.label, -1) for example in examples], dtype=np.int64)
    if (y_true < 0).any():
        unknown = sorted({e.label for e in examples if e.label not in column})
        raise DataError(
            f"labels not known to the model: {', '.join(unknown)} (model labels: {', '.join(model.labels)})"
        )
    return y_true, model.predict_proba([example.text for example in examples])


def train_classifier(
    data: str | Path, out: str | Path, config: TrainConfig, name: str = "", command: str = ""
) -> ModelCard:
    """Train, save `out` (`.ftz` when quantised) and its card; return the card."""
    out = Path(out)
    examples = read_examples(data, config.text_fields, config.label_field, config.split_field)
    train, valid = split_examples(examples, config)
    labels = sorted({example.label for example in examples})
    if len(labels) < 2:
        raise DataError(f"{data}: needs at least two labels, found {labels}")
    if not train or not valid:
        raise DataError(f"{data}: the split left no {'training' if not train else 'validation'} examples")
    positive = _positive_label(labels, train, config)
    params = config.fasttext.as_fasttext_kwargs()
    quantize = dataclasses.asdict(config.quantize) if config.quantize.enabled else None
    started, children_before = time.perf_counter(), _children_cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="gemmaflow-classifier-") as tmp:
        train_file, valid_file = Path(tmp) / "train.txt", Path(tmp) / "valid.txt"
        _write_fasttext_file(train, train_file, config.max_chars)
        _write_fasttext_file(valid, valid_file, config.max_chars)
        out.parent.mkdir(parents=True, exist_ok=True)
        # fastText 0.9.3 training reads memory it never initialised: in a process whose heap has been
        # used (a test run, a long session), the same data and seed give different models and often
        # "Encountered NaN". A fresh interpreter per training gives the same model every time.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                params = pool.submit(_fit, str(train_file), str(valid_file), str(out), params,
                                     config.autotune_seconds, quantize).result()  # fmt: skip
            except RuntimeError as exc:
                raise TrainingError(f"fastText training failed: {exc} (a lower --lr usually helps)") from None
    seconds, cpu_seconds = time.perf_counter() - started, _children_cpu_seconds() - children_before
    card_path(out).unlink(missing_ok=True)  # a stale card must not describe the new model while measuring
    saved = Classifier(out)
    y_true, proba = predict_examples(saved, valid)
    threshold = None
    if positive is not None:
        column = saved.labels.index(positive)
        # Floored to the 6 decimals the card stores, so the stored threshold keeps what was measured.
        threshold = math.floor(choose_threshold(proba[:, column], y_true == column, config.min_recall) * 1e6) / 1e6
    card = ModelCard(
        name=name or out.stem,
        labels=saved.labels,
        positive_label=positive,
        threshold=threshold,
        fasttext={**params, "autotune_seconds": config.autotune_seconds, "quantize": quantize},
        preprocessing={"function": "gemmaflow.classifiers.preprocess.preprocess", "max_chars": config.max_chars},
        data={
            "path": str(data), "sha256": file_digest(data), "bytes": Path(data).stat().st_size, "rows": len(examples),
            "label_counts": dict(sorted(Counter(e.label for e in examples).items())),
            "text_fields": list(config.text_fields), "label_field": config.label_field,
        },
        split={
            "split_field": config.split_field or "(hash of the text)", "valid_fraction": config.valid_fraction,
            "seed": config.split_seed, "train_rows": len(train), "valid_rows": len(valid),
            "valid_groups": len({e.group for e in valid}),
        },
        metrics=evaluate(saved.labels, y_true, proba, positive, threshold),
        training_seconds=round(seconds, 2),
        training_cpu_seconds=round(cpu_seconds, 2),
        quantized=config.quantize.enabled,
        model_bytes=out.stat().st_size,
        command=command,
        versions={"fasttext": metadata.version("fasttext"), "gemmaflow": metadata.version("gemmaflow")},
    )  # fmt: skip
    write_card(card, card_path(out))
    return card
