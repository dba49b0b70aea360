"""Export alt-profanity-check's offensive-language model to the .npz gemmaflow ships as `safety`.

    python -m venv build/venvs/profanity-check
    build/venvs/profanity-check/bin/pip install alt-profanity-check==1.9.1
    build/venvs/profanity-check/bin/python scripts/export_safety_model.py

alt-profanity-check pins one scikit-learn release and unpickles its model with it, so gemmaflow does
not depend on it, and this script runs in an environment of its own that has only that package (and
no gemmaflow). It reads the fitted TF-IDF vocabulary and idf, the five calibrated LinearSVCs'
weights and Platt parameters, and writes them as plain arrays to classifiers/models/safety.npz,
which `gemmaflow.classifiers.linear` evaluates with numpy alone. It also scores the test fixtures
with the original scikit-learn model, on the same preprocessed text gemmaflow scores, into
tests/data/safety/expected_scores.json, so a test holds the port to the original.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_CHARS = 20_000  # whole pages: the model scores a document, and insults are rarely in its first lines
FIXTURES = REPO / "tests" / "data" / "safety"
OUT_MODEL = REPO / "classifiers" / "models" / "safety.npz"
OUT_EXPECTED = FIXTURES / "expected_scores.json"


def gemmaflow_preprocess() -> Callable[[str, int], str]:
    """gemmaflow's classifier preprocessing, loaded from its file (the export environment lacks gemmaflow)."""
    spec = importlib.util.spec_from_file_location("preprocess", REPO / "classifiers" / "preprocess.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.preprocess


def export() -> None:
    import numpy as np
    import sklearn
    from profanity_check import profanity_check

    vectorizer, model = profanity_check.vectorizer, profanity_check.model
    expected = {
        "lowercase": True,
        "token_pattern": r"(?u)\b\w\w+\b",
        "ngram_range": (1, 1),
        "norm": "l2",
        "use_idf": True,
        "smooth_idf": True,
        "sublinear_tf": False,
        "binary": False,
        "analyzer": "word",
    }
    params = vectorizer.get_params()
    differs = {k: params[k] for k, v in expected.items() if params[k] != v}
    if differs or model.method != "sigmoid" or list(model.classes_) != [0, 1]:
        raise SystemExit(f"the model is not the TF-IDF + Platt-calibrated linear model this export reads: {differs}")
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    folds = model.calibrated_classifiers_
    arrays = {
        "vocabulary": np.array(vocabulary),
        "idf": vectorizer.idf_.astype(np.float64),
        "coef": np.stack([f.estimator.coef_[0] for f in folds]).astype(np.float64),
        "intercept": np.array([f.estimator.intercept_[0] for f in folds], dtype=np.float64),
        "calibration_a": np.array([f.calibrators[0].a_ for f in folds], dtype=np.float64),
        "calibration_b": np.array([f.calibrators[0].b_ for f in folds], dtype=np.float64),
        "labels": np.array(["clean", "offensive"]),
        "max_chars": np.array(MAX_CHARS),
    }
    OUT_MODEL.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT_MODEL, **arrays)

    preprocess = gemmaflow_preprocess()
    scores: dict[str, list[float]] = {}
    for fixture in sorted(FIXTURES.glob("*.txt")):
        texts = [line for line in fixture.read_text(encoding="utf-8").splitlines() if line.strip()]
        lines = [preprocess(text, MAX_CHARS) for text in texts]
        scores[fixture.name] = [float(p) for p in model.predict_proba(vectorizer.transform(lines))[:, 1]]
    OUT_EXPECTED.write_text(
        json.dumps(
            {"source": "alt-profanity-check 1.9.1", "scikit_learn": sklearn.__version__, "scores": scores}, indent=1
        )
        + "\n",
        encoding="utf-8",
    )
    print(
        f"{OUT_MODEL} ({OUT_MODEL.stat().st_size:,} bytes, {len(vocabulary):,} words, {len(folds)} folds); "
        f"{OUT_EXPECTED}"
    )


if __name__ == "__main__":
    export()
