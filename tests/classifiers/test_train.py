import pytest

from gemmaflow.classifiers.card import card_path, read_card
from gemmaflow.classifiers.config import QuantizeParams, TrainConfig
from gemmaflow.classifiers.data import DataError
from gemmaflow.classifiers.model import Classifier
from gemmaflow.classifiers.train import train_classifier
from tests.classifiers.synthetic import SMALL_PARAMS, labeled_rows, train_small, write_rows


def test_small_generated_set_reaches_stated_accuracy(domain_model):
    # Stated: >= 0.95 validation macro-F1 on three labels of 150 generated documents each.
    card = read_card(card_path(domain_model))
    assert card.metrics["macro_f1"] >= 0.95


def test_training_is_reproducible(tmp_path):
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        paths.append(train_small(tmp_path / sub, "m", ["good", "junk"], n_per_label=60))
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_safety_style_labels_on_two_text_fields(tmp_path):
    """A user's own labels (Jigsaw-style toxic/ok) on SFT-shaped records: same job, same card."""
    rows = [{"instruction": r["text"].split("\n")[0], "response": r["text"], "toxic": r["label"], "source": r["source"]}
            for r in labeled_rows(["ok", "toxic"], 80)]  # fmt: skip
    data = write_rows(tmp_path / "safety.jsonl", rows)
    config = TrainConfig(text_fields=("instruction", "response"), label_field="toxic", split_field="source",
                         fasttext=SMALL_PARAMS)  # fmt: skip
    card = train_classifier(data, tmp_path / "safety.bin", config)
    assert card.positive_label in ("ok", "toxic") and card.metrics["roc_auc"] >= 0.95
    assert card.data["text_fields"] == ["instruction", "response"]


@pytest.mark.slow
def test_quantized_model_is_small_and_still_accurate(tmp_path):
    data = write_rows(tmp_path / "d.jsonl", labeled_rows(["web", "code", "math"], 100))
    config = TrainConfig(split_field="source", fasttext=SMALL_PARAMS, quantize=QuantizeParams(True, cutoff=2000))
    card = train_classifier(data, tmp_path / "d.ftz", config)
    assert card.quantized and card.model_bytes < 200_000 and card.metrics["macro_f1"] >= 0.95
    assert set(Classifier(tmp_path / "d.ftz").labels) == {"web", "code", "math"}


def test_data_errors_name_the_line(tmp_path):
    data = write_rows(tmp_path / "d.jsonl", [{"text": "a b", "label": "x"}, {"text": "c d"}])
    with pytest.raises(DataError, match=r"d.jsonl:2: `label` must be a label"):
        train_classifier(data, tmp_path / "m.bin", TrainConfig())
    one = write_rows(tmp_path / "one.jsonl", [{"text": f"a {i}", "label": "x"} for i in range(20)])
    with pytest.raises(DataError, match="needs at least two labels"):
        train_classifier(one, tmp_path / "m.bin", TrainConfig())
    with pytest.raises(DataError, match="not a label of the data"):
        train_classifier(write_rows(tmp_path / "two.jsonl", labeled_rows(["good", "junk"], 20)), tmp_path / "m.bin",
                         TrainConfig(positive_label="great"))  # fmt: skip
