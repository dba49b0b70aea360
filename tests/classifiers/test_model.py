import numpy as np
import pytest

from gemmaflow.classifiers.model import Classifier, ModelLoadError, check_model_file, shipped_model_path


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="classifier model not found"):
        Classifier(tmp_path / "nope.bin")


def test_a_file_that_is_not_fasttext_is_a_clear_error(tmp_path):
    fake = tmp_path / "model.bin"
    fake.write_text("this is not a model\n")
    with pytest.raises(ModelLoadError, match="not a fastText model"):
        check_model_file(fake)
    with pytest.raises(ModelLoadError, match="not a fastText model"):
        Classifier(fake)


def test_batched_probabilities(domain_model):
    model = Classifier(domain_model)
    assert set(model.labels) == {"web", "code", "math"}
    proba = model.predict_proba(["def f ( ) : return x ;", "the river museum and garden", "\\frac $ x ^ 2 $ proof"])
    assert proba.shape == (3, 3) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-3)
    assert [model.labels[i] for i in proba.argmax(axis=1)] == ["code", "web", "math"]
    assert model.predict_proba([]).shape == (0, 3)


def test_unknown_shipped_name():
    with pytest.raises(ModelLoadError, match="no shipped classifier"):
        shipped_model_path("toxicity")
