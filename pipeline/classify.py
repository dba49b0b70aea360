"""Classifier scores, thresholds and actions on documents (the `classify` stage's plain functions, no Beam).

Each configured classifier, in config order, on the documents of its domains:
- writes `scores[name]`: P(label), or the top label's probability when `label` is empty;
- `write_domain`: replaces a `domain` the rules guessed from the text (`domain_method` in
  `domain_from`, `content` by default) with the model's top label when the score reaches the
  threshold; a domain given in the input record is never replaced. Later classifiers see the new
  domain, so list the domain classifier first;
- `drop`: drops when the score >= threshold (reason `<name>.<label>_above_threshold`);
- `keep-only`: drops when the score < threshold (reason `<name>.<label>_below_threshold`);
- `annotate`: never drops.
A document a classifier dropped is not scored by the ones after it. Texts are preprocessed once per
(fields, max_chars) and every model predicts its documents in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gemmaflow.classifiers.data import join_fields
from gemmaflow.classifiers.model import TextClassifier, open_classifier
from gemmaflow.classifiers.preprocess import preprocess
from gemmaflow.pipeline.config import ClassifierEntry, ClassifyConfig

Document = dict[str, Any]
Verdict = tuple[str, str] | None
Tally = Callable[[str, int], None]


def score_of(entry: ClassifierEntry, model: TextClassifier, proba: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(score per document, top label per document) for one classifier's probability matrix."""
    top = [model.labels[i] for i in proba.argmax(axis=1)]
    if entry.label:
        return proba[:, model.labels.index(entry.label)], top
    return proba.max(axis=1), top


def decide(entry: ClassifierEntry, score: float) -> Verdict:
    """The action's verdict on one score."""
    label = entry.label or "top"
    if entry.action == "drop" and score >= entry.threshold:
        return f"{entry.name}.{label}_above_threshold", f"{score:.4f} >= {entry.threshold}"
    if entry.action == "keep-only" and score < entry.threshold:
        return f"{entry.name}.{label}_below_threshold", f"{score:.4f} < {entry.threshold}"
    return None


def _replaceable(doc: Document, entry: ClassifierEntry) -> bool:
    method = doc.get("domain_method")
    return method is None or method in entry.domain_from


class DocumentClassifiers:
    """The configured models, loaded once (per worker), applied to batches of documents."""

    def __init__(self, config: ClassifyConfig) -> None:
        self.config = config
        self.models = [open_classifier(entry.resolved_model_path()) for entry in config.classifiers]

    def _texts(self, docs: Sequence[Document], entry: ClassifierEntry, model: TextClassifier,
               cache: dict[tuple[Any, ...], str]) -> list[str]:  # fmt: skip
        lines = []
        for doc in docs:
            key = (id(doc), entry.text_fields, model.max_chars)  # the batch holds every doc, so ids are unique
            if key not in cache:
                cache[key] = preprocess(join_fields(doc, entry.text_fields) or "", model.max_chars)
            lines.append(cache[key])
        return lines

    def judge_batch(self, docs: Sequence[Document], tally: Tally) -> list[Verdict]:
        """Score, relabel and judge `docs` in place; one verdict per document (None keeps it)."""
        verdicts: list[Verdict] = [None] * len(docs)
        cache: dict[tuple[Any, ...], str] = {}
        for entry, model in zip(self.config.classifiers, self.models, strict=True):
            todo = [
                i for i, doc in enumerate(docs) if verdicts[i] is None and (doc.get("domain") or "web") in entry.domains
            ]
            if not todo:
                continue
            proba = model.predict_lines(self._texts([docs[i] for i in todo], entry, model, cache))
            scores, top = score_of(entry, model, proba)
            for i, score, label in zip(todo, scores.tolist(), top, strict=True):
                doc = docs[i]
                doc.setdefault("scores", {})[entry.name] = score
                if entry.write_domain and _replaceable(doc, entry) and score >= entry.threshold:
                    if doc.get("domain") != label:
                        tally(f"{entry.name}.domain_{doc.get('domain')}_to_{label}", 1)
                    doc["domain"], doc["domain_method"] = label, "model"
                verdicts[i] = decide(entry, score)
            tally(f"{entry.name}.scored", len(todo))
        return verdicts
