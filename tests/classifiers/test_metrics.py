import itertools

import numpy as np
import pytest

from gemmaflow.classifiers.metrics import (
    choose_threshold,
    confusion_matrix,
    evaluate,
    format_report,
    per_label_scores,
    roc_auc,
)


def test_confusion_matrix_and_per_label_scores():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    matrix = confusion_matrix(y_true, y_pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    precision, recall, f1 = per_label_scores(matrix)
    assert precision.tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert recall.tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert f1.tolist() == pytest.approx([0.5, 0.8, 2 / 3])


def test_roc_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    positive = rng.random(60) < 0.4
    pairs = [(p, n) for p, n in itertools.product(scores[positive], scores[~positive])]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert roc_auc(scores, positive) == pytest.approx(expected)
    assert roc_auc(np.array([0.1, 0.9]), np.array([False, True])) == 1.0
    assert np.isnan(roc_auc(np.array([0.5]), np.array([True])))


def test_threshold_by_min_recall_and_by_f1():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.95])
    positive = np.array([False, False, True, False, True, True, True, True])
    assert choose_threshold(scores, positive, min_recall=0.8) == 0.7  # keeps 4 of 5 positives
    assert choose_threshold(scores, positive, min_recall=1.0) == 0.3
    assert choose_threshold(scores, positive) == 0.3  # F1 10/11 beats 0.7 (8/9)


def test_evaluate_binary_reports_auc_and_threshold_effect():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    metrics = evaluate(["good", "junk"], np.array([0, 1, 0, 1]), proba, positive_label="good", threshold=0.5)
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0 and metrics["roc_auc"] == 1.0
    assert metrics["at_threshold"]["positives_kept"] == 1.0 and metrics["at_threshold"]["negatives_kept"] == 0.0
    report = format_report(metrics)
    assert "ROC-AUC 1.0000" in report and "confusion matrix" in report
