import hashlib
import json

import pytest

from gemmaflow.classifiers.card import card_path, read_card, write_card


def test_trained_card_contents(domain_model):
    card = read_card(card_path(domain_model))
    data = domain_model.with_suffix(".jsonl")
    assert card.name == "domain" and set(card.labels) == {"web", "code", "math"}
    assert card.positive_label is None and card.threshold is None  # three labels: top label, no threshold
    assert card.fasttext["dim"] == 16 and card.fasttext["wordNgrams"] == 2 and card.fasttext["loss"] == "softmax"
    assert card.data["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert card.data["rows"] == 450 and card.data["label_counts"] == {"code": 150, "math": 150, "web": 150}
    assert card.split["train_rows"] + card.split["valid_rows"] == 450 and card.split["split_field"] == "source"
    assert set(card.metrics["per_label"]) == {"web", "code", "math"}
    assert card.metrics["examples"] == card.split["valid_rows"]
    assert card.model_bytes == domain_model.stat().st_size and card.command == "test domain"
    assert card.preprocessing == {"function": "gemmaflow.classifiers.preprocess.preprocess", "max_chars": 1500}


def test_binary_card_has_auc_and_threshold(quality_model):
    card = read_card(card_path(quality_model))
    assert card.positive_label == "good" and 0.0 < card.threshold < 1.0
    assert card.metrics["roc_auc"] >= 0.95
    assert card.metrics["at_threshold"]["positives_kept"] >= 0.9  # min_recall=0.9


def test_round_trip_and_bad_cards(tmp_path, domain_model):
    card = read_card(card_path(domain_model))
    write_card(card, tmp_path / "copy.json")
    assert read_card(tmp_path / "copy.json") == card
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ValueError, match=r"lacks .*labels"):
        read_card(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="model card not found"):
        read_card(tmp_path / "none.json")
