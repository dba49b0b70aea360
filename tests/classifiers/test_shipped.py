"""The shipped models are package data, carry their cards, and the default config matches them."""

from gemmaflow.classifiers.card import card_path, read_card
from gemmaflow.classifiers.model import SHIPPED_FASTTEXT_MODELS, SHIPPED_MODELS, Classifier, shipped_model_path
from gemmaflow.pipeline.config import SHIPPED_QUALITY_THRESHOLD, ClassifyConfig


def test_shipped_models_load_with_cards_and_are_small():
    total = 0
    assert set(SHIPPED_FASTTEXT_MODELS) == {"domain", "quality"} and "safety" in SHIPPED_MODELS
    for name in SHIPPED_FASTTEXT_MODELS:
        model = Classifier(shipped_model_path(name))
        card = read_card(card_path(shipped_model_path(name)))
        assert card.name == name and card.quantized and model.labels == card.labels
        assert card.command.startswith("gemmaflow classifier train ") and "--split-field group" in card.command
        total += card.model_bytes
    assert total < 8_000_000


def test_shipped_cards_meet_the_issue_targets():
    domain = read_card(card_path(shipped_model_path("domain")))
    assert set(domain.labels) == {"web", "code", "math"} and domain.metrics["macro_f1"] >= 0.97
    quality = read_card(card_path(shipped_model_path("quality")))
    assert quality.positive_label == "good" and quality.metrics["roc_auc"] >= 0.95
    assert quality.metrics["at_threshold"]["positives_kept"] >= 0.95


def test_default_config_uses_the_shipped_threshold():
    quality = read_card(card_path(shipped_model_path("quality")))
    assert quality.threshold == SHIPPED_QUALITY_THRESHOLD
    entry = {e.name: e for e in ClassifyConfig().classifiers}["quality"]
    assert (entry.label, entry.action, entry.threshold) == ("good", "keep-only", quality.threshold)
