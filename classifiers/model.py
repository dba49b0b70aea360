"""Loading a trained classifier with clear errors, and batched prediction of label probabilities.

fastText's single-string `predict` fails under numpy 2; the list form (one C++ call for the whole
batch) works and is faster, so that is the only form used.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from gemmaflow.classifiers.card import ModelCard, card_path, read_card
from gemmaflow.classifiers.preprocess import DEFAULT_MAX_CHARS, preprocess

LABEL_PREFIX = "__label__"
FASTTEXT_MAGIC = 793712314  # the int32 every fastText .bin/.ftz file starts with, then the format version
FASTTEXT_VERSION = 12
# The models inside the package: fastText ones trained by scripts/train_shipped_classifiers.py (each
# with its card) and the linear safety model exported by scripts/export_safety_model.py.
SHIPPED_FILES = {"domain": "domain.ftz", "quality": "quality.ftz", "safety": "safety.npz"}
SHIPPED_MODELS = tuple(SHIPPED_FILES)
SHIPPED_FASTTEXT_MODELS = tuple(name for name, file in SHIPPED_FILES.items() if file.endswith(".ftz"))
LINEAR_SUFFIX = ".npz"


class ModelLoadError(ValueError):
    """A model path that does not exist or is not a fastText model."""


def shipped_model_path(name: str) -> str:
    """Path of a model shipped inside the package (classifiers/models/)."""
    if name not in SHIPPED_FILES:
        raise ModelLoadError(f"no shipped classifier called {name!r} (shipped: {', '.join(SHIPPED_MODELS)})")
    return str(resources.files("gemmaflow.classifiers").joinpath("models", SHIPPED_FILES[name]))


def check_model_file(path: str | Path) -> None:
    """Raise ModelLoadError unless `path` is a file that starts like a fastText model."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"classifier model not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or struct.unpack("<ii", head) != (FASTTEXT_MAGIC, FASTTEXT_VERSION):
        raise ModelLoadError(f"not a fastText model: {path}")


class TextClassifier(ABC):
    """A model the classify stage and the evaluation use, fastText or linear: every kind reads raw text
    through the one classifier preprocessing (classifiers/preprocess.py) and scores the lines it makes."""

    path: str
    labels: tuple[str, ...]
    max_chars: int
    card: ModelCard | None  # fastText models trained by gemmaflow carry one (classifiers/card.py)

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        return [preprocess(text, self.max_chars) for text in texts]

    @abstractmethod
    def predict_lines(self, lines: Sequence[str]) -> np.ndarray:
        """Probabilities (rows: inputs, columns: `self.labels`) for already-preprocessed lines."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities for raw texts, preprocessed exactly as the model was trained (or exported)."""
        return self.predict_lines(self.preprocess(texts))


class Classifier(TextClassifier):
    """A fastText supervised model and the preprocessing it was trained with; one per worker process."""

    def __init__(self, path: str | Path) -> None:
        import fasttext

        check_model_file(path)
        self.path = str(path)
        try:
            self._model = fasttext.load_model(self.path)
        except ValueError as exc:
            raise ModelLoadError(f"not a fastText model: {path} ({exc})") from None
        raw = self._model.get_labels()
        if not raw:
            raise ModelLoadError(f"not a fastText supervised model (no labels): {path}")
        self.labels: tuple[str, ...] = tuple(label.removeprefix(LABEL_PREFIX) for label in raw)
        self._column = {label: i for i, label in enumerate(raw)}
        self.card: ModelCard | None = read_card(card_path(path)) if card_path(path).is_file() else None
        self.max_chars = int(self.card.preprocessing["max_chars"]) if self.card else DEFAULT_MAX_CHARS

    def predict_lines(self, lines: Sequence[str]) -> np.ndarray:
        """Probabilities (rows: inputs, columns: `self.labels`) for already-preprocessed lines."""
        proba = np.zeros((len(lines), len(self.labels)), dtype=np.float32)
        if not lines:
            return proba
        all_labels, all_probs = self._model.predict(list(lines), k=-1)
        for row, (labels, probs) in enumerate(zip(all_labels, all_probs, strict=True)):
            for label, p in zip(labels, probs, strict=True):
                proba[row, self._column[label]] = p
        np.clip(proba, 0.0, 1.0, out=proba)  # softmax can come back a hair above 1
        return proba


def open_classifier(path: str | Path) -> TextClassifier:
    """The model at `path`: a linear text model (`.npz`, classifiers/linear.py) or a fastText one."""
    if str(path).endswith(LINEAR_SUFFIX):
        from gemmaflow.classifiers.linear import LinearTextClassifier

        return LinearTextClassifier(path)
    return Classifier(path)
