"""Classification metrics with numpy: per-label precision/recall/F1, confusion matrix, ROC-AUC, threshold.

Inputs are label indices (`y_true`) and a probability matrix (`proba`, one column per label in the
model's label order); predictions are the top column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Rows: true label, columns: predicted label."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_label_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F1) per label; 0 where undefined (no predictions or no examples)."""
    tp = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return precision, recall, f1


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties half).

    Computed from the rank sum (Mann-Whitney U) with tied scores given their average rank.
    """
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def choose_threshold(scores: np.ndarray, positive: np.ndarray, min_recall: float = 0.0) -> float:
    """The threshold on the positive label's probability (keep when score >= threshold).

    With `min_recall`, the highest threshold that keeps at least that share of the positives;
    without, the one with the best F1 of the positive label.
    """
    n_pos = int(positive.sum())
    if n_pos == 0:
        return 0.5
    candidates = np.unique(scores)[::-1]  # descending
    kept_pos = n_pos - np.searchsorted(np.sort(scores[positive]), candidates, side="left")
    if min_recall > 0:
        ok = np.flatnonzero(kept_pos >= min_recall * n_pos)
        return float(candidates[ok[0]])
    kept_all = len(scores) - np.searchsorted(np.sort(scores), candidates, side="left")
    f1 = 2 * kept_pos / (kept_all + n_pos)
    return float(candidates[int(np.argmax(f1))])


def evaluate(
    labels: Sequence[str],
    y_true: np.ndarray,
    proba: np.ndarray,
    positive_label: str | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """The model card's metrics: accuracy, macro-F1, per-label P/R/F1, confusion matrix and, for a
    binary model, ROC-AUC and what the threshold keeps of each label."""
    n = len(labels)
    y_pred = proba.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, n)
    precision, recall, f1 = per_label_scores(matrix)
    support = matrix.sum(axis=1)
    present = support > 0
    result: dict[str, Any] = {
        "examples": len(y_true),
        "accuracy": round(float((y_pred == y_true).mean()), 4) if len(y_true) else 0.0,
        "macro_f1": round(float(f1[present].mean()), 4) if present.any() else 0.0,
        "per_label": {
            label: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                    "f1": round(float(f1[i]), 4), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": list(labels), "rows_true_columns_predicted": matrix.tolist()},
    }  # fmt: skip
    if positive_label is not None:
        column = list(labels).index(positive_label)
        scores, positive = proba[:, column], y_true == column
        result["roc_auc"] = round(roc_auc(scores, positive), 4)
        if threshold is not None:
            kept = scores >= threshold
            result["at_threshold"] = {
                "threshold": threshold,
                "positive_label": positive_label,
                "positives_kept": round(float(kept[positive].mean()), 4) if positive.any() else None,
                "negatives_kept": round(float(kept[~positive].mean()), 4) if (~positive).any() else None,
            }
    return result


def format_report(metrics: dict[str, Any]) -> str:
    """The metrics as the text `gemmaflow classifier eval` prints."""
    labels = metrics["confusion_matrix"]["labels"]
    width = max(12, *(len(label) + 2 for label in labels))
    lines = [f"examples {metrics['examples']}  accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}"]
    if "roc_auc" in metrics:
        lines[0] += f"  ROC-AUC {metrics['roc_auc']:.4f}"
    lines.append(f"{'label':{width}s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>9s}")
    for label, s in metrics["per_label"].items():
        lines.append(f"{label:{width}s} {s['precision']:9.4f} {s['recall']:9.4f} {s['f1']:9.4f} {s['support']:9d}")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{label:>{width}s}" for label in labels))
    for label, row in zip(labels, metrics["confusion_matrix"]["rows_true_columns_predicted"], strict=True):
        lines.append(f"{label:{width}s}" + "".join(f"{n:>{width}d}" for n in row))
    at = metrics.get("at_threshold")
    if at:
        lines.append(
            f"at threshold {at['threshold']:.4f} on P({at['positive_label']}): "
            f"{at['positive_label']} kept {at['positives_kept']}, others kept {at['negatives_kept']}"
        )
    return "\n".join(lines)
