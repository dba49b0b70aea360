"""A TF-IDF linear text classifier evaluated with numpy alone: how the shipped `safety` model runs.

The shipped safety model is alt-profanity-check's offensive-language model (profanity-check by Victor
Zhou, 2018, maintained as alt-profanity-check by Menelaos Kotoglou and Dimitrios Mistriotis; MIT
licence): scikit-learn's TfidfVectorizer (word unigrams of two or more word characters, lower-cased,
English stop words left out of the vocabulary, smoothed idf, l2 norm) feeding a CalibratedClassifierCV
of five LinearSVCs, each Platt-calibrated (a sigmoid of its decision value), whose probabilities are
averaged. That package pins one scikit-learn release to unpickle its model, so
scripts/export_safety_model.py writes the fitted arrays to one .npz and this module computes exactly
what scikit-learn computes from them (a test holds the two within 1e-9 on the safety fixtures).

The model reads the text gemmaflow's classifier preprocessing produces (lower-cased, punctuation split
off): its word tokens are the ones scikit-learn's pattern finds in the raw text.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gemmaflow.classifiers.card import ModelCard
from gemmaflow.classifiers.model import ModelLoadError, TextClassifier

_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
ARRAYS = ("vocabulary", "idf", "coef", "intercept", "calibration_a", "calibration_b", "labels", "max_chars")


class LinearTextClassifier(TextClassifier):
    """TF-IDF + calibrated linear models over words; `predict_lines` gives P(label) per text like fastText's."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if not Path(path).is_file():
            raise ModelLoadError(f"classifier model not found: {path}")
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in ARRAYS if name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:  # ValueError: not an .npz at all
            raise ModelLoadError(f"not a linear text model: {path} ({exc})") from None
        missing = [name for name in ARRAYS if name not in arrays]
        if missing:
            raise ModelLoadError(f"not a linear text model: {path} lacks {', '.join(missing)}")
        vocabulary = arrays["vocabulary"].tolist()
        self._index = {word: i for i, word in enumerate(vocabulary)}
        self._idf = arrays["idf"].astype(np.float64)
        self._coef = arrays["coef"].astype(np.float64)  # [folds, vocabulary]
        self._intercept = arrays["intercept"].astype(np.float64)
        self._a = arrays["calibration_a"].astype(np.float64)
        self._b = arrays["calibration_b"].astype(np.float64)
        folds = len(self._intercept)
        if (self._idf.shape != (len(vocabulary),) or self._coef.shape != (folds, len(vocabulary))
                or self._a.shape != (folds,) or self._b.shape != (folds,) or folds == 0):  # fmt: skip
            raise ModelLoadError(f"not a linear text model: {path} has inconsistent array shapes")
        self.labels: tuple[str, ...] = tuple(arrays["labels"].tolist())
        if len(self.labels) != 2:
            raise ModelLoadError(f"not a linear text model: {path} needs two labels, has {list(self.labels)}")
        self.max_chars = int(arrays["max_chars"])
        self.card: ModelCard | None = None  # its provenance is classifiers/models/safety.md

    def _positive(self, line: str) -> float:
        counts = Counter(i for i in map(self._index.get, _WORD.findall(line)) if i is not None)
        if counts:
            columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) * self._idf[columns]
            weights /= np.sqrt(weights @ weights)
            decision = self._coef[:, columns] @ weights + self._intercept
        else:
            decision = self._intercept
        return float(np.mean(1.0 / (1.0 + np.exp(self._a * decision + self._b))))

    def predict_lines(self, lines: Sequence[str]) -> np.ndarray:
        """Probabilities (rows: inputs, columns: `self.labels`) for already-preprocessed lines."""
        proba = np.zeros((len(lines), 2), dtype=np.float64)
        proba[:, 1] = [self._positive(line) for line in lines]
        proba[:, 0] = 1.0 - proba[:, 1]
        return proba
