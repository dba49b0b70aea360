"""The shipped safety model: the numpy port equals scikit-learn, its threshold holds on the fixtures, bad files fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gemmaflow.classifiers.linear import ARRAYS, LinearTextClassifier
from gemmaflow.classifiers.model import ModelLoadError, open_classifier, shipped_model_path
from gemmaflow.pipeline.classify import DocumentClassifiers
from gemmaflow.pipeline.config import SHIPPED_SAFETY_THRESHOLD, ClassifyConfig
from tests.pipeline.test_classify_stage import doc, judge

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "safety"


def fixture(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def safety() -> LinearTextClassifier:
    model = open_classifier(shipped_model_path("safety"))
    assert isinstance(model, LinearTextClassifier)
    return model


def test_port_equals_scikit_learn_on_every_fixture(safety):
    expected = json.loads((FIXTURES / "expected_scores.json").read_text())["scores"]
    assert set(expected) == {"offensive.txt", "benign_hard.txt", "medical_legal.txt"}
    for name, scores in expected.items():
        ours = safety.predict_proba(fixture(name))[:, 1]
        assert ours.shape == (len(scores),)
        np.testing.assert_allclose(ours, scores, rtol=0, atol=1e-9, err_msg=name)


def test_shipped_threshold_catches_offence_and_spares_medical_and_legal_prose(safety):
    assert safety.labels == ("clean", "offensive")
    offensive = safety.predict_proba(fixture("offensive.txt"))[:, 1]
    hard = safety.predict_proba(fixture("benign_hard.txt"))[:, 1]
    paragraphs = safety.predict_proba(fixture("medical_legal.txt"))[:, 1]
    assert (offensive >= SHIPPED_SAFETY_THRESHOLD).mean() >= 0.9
    assert (hard >= SHIPPED_SAFETY_THRESHOLD).sum() <= 1
    assert (paragraphs < SHIPPED_SAFETY_THRESHOLD).all()


def test_probabilities_are_rows_that_sum_to_one_even_for_text_without_known_words(safety):
    proba = safety.predict_proba(["", "zzzqx wvvb", "You are a complete idiot."])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] == proba[1, 1]  # no known word: the intercepts alone
    assert proba[2, 1] > 0.9


def test_default_classify_stage_drops_offensive_web_pages_only(safety):
    insult = fixture("offensive.txt")[0]
    medical = fixture("medical_legal.txt")[0]
    docs = [doc("web-insult", insult, "web", "record"), doc("web-medical", medical, "web", "record"),
            doc("code-insult", f"# {insult}\nx = 1\n", "code", "record")]  # fmt: skip
    config = ClassifyConfig(classifiers=tuple(e for e in ClassifyConfig().classifiers if e.name == "safety"))
    verdicts, tallies = judge(config, docs)
    assert verdicts[0] is not None and verdicts[0][0] == "safety.offensive_above_threshold"
    assert verdicts[1] is None and verdicts[2] is None
    assert tallies == {"safety.scored": 2}
    assert "safety" in docs[1]["scores"] and "safety" not in docs[2].get("scores", {})
    assert isinstance(DocumentClassifiers(config).models[0], LinearTextClassifier)


def _arrays(safety_path: str) -> dict[str, np.ndarray]:
    with np.load(safety_path) as data:
        return {name: data[name] for name in data.files}


def test_missing_unreadable_and_incomplete_models_fail_with_the_reason(tmp_path):
    with pytest.raises(ModelLoadError, match="classifier model not found"):
        open_classifier(tmp_path / "none.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip archive")
    with pytest.raises(ModelLoadError, match="not a linear text model"):
        open_classifier(tmp_path / "garbage.npz")
    arrays = _arrays(shipped_model_path("safety"))
    np.savez(tmp_path / "partial.npz", **{k: v for k, v in arrays.items() if k != "idf"})
    with pytest.raises(ModelLoadError, match="lacks idf"):
        open_classifier(tmp_path / "partial.npz")
    np.savez(tmp_path / "shapes.npz", **{**arrays, "coef": arrays["coef"][:, :10]})
    with pytest.raises(ModelLoadError, match="inconsistent array shapes"):
        open_classifier(tmp_path / "shapes.npz")
    assert set(arrays) == set(ARRAYS)
