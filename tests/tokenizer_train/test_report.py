"""The validation report and the card written next to the model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gemmaflow.tokenizer_train.report import format_report, validation_report
from gemmaflow.tokenizer_train.sample import HeldOutDocument


def test_report_on_heldout_documents_is_exact_and_complete(trained: tuple[Path, dict[str, Any]]) -> None:
    report = trained[1]["report"]
    assert report["round_trip"]["rate"] == 1.0 and report["round_trip"]["failures"] == []
    assert report["overall"]["unk_rate"] == 0
    assert set(report["domains"]) == {"web", "code", "math"}
    assert {"web/en", "code/und", "math/en"} <= set(report["groups"])
    for row in report["domains"].values():
        assert row["bytes_per_token"] > 1 and row["tokens_per_word"] > 0
    vocab = report["vocabulary"]
    assert 0 <= vocab["unused_share"] <= 1 and vocab["learned_pieces"] < vocab["size"] == 1000
    lengths = [len(p) for p in report["longest_pieces"]]
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == 20
    table = format_report(report)
    assert "round-trip" in table and "code" in table and "100.00%" in table


def test_card_records_settings_sample_and_the_model_hash(trained: tuple[Path, dict[str, Any]]) -> None:
    out, card = trained
    on_disk = json.loads((out / "tokenizer_card.json").read_text(encoding="utf-8"))
    assert on_disk == card
    assert card["model"]["sha256"] == hashlib.sha256((out / "tokenizer.model").read_bytes()).hexdigest()
    assert card["config"]["trainer"]["vocab_size"] == 1000
    assert card["trainer_arguments"]["model_type"] == "bpe"
    assert card["trainer_arguments"]["add_dummy_prefix"] is False
    assert "input" not in card["trainer_arguments"]  # no temporary paths in the card
    assert card["sample"]["bytes_taken"] > 0 and card["sample"]["heldout"]["documents"] > 0
    assert {t["piece"]: t["id"] for t in card["model"]["special_tokens"]}["<end_of_turn>"] == 107
    vocab_lines = (out / "tokenizer.vocab").read_text(encoding="utf-8")
    assert vocab_lines.startswith("<pad>\t0\n<eos>\t0\n")


def test_a_round_trip_failure_is_reported(trained: tuple[Path, dict[str, Any]]) -> None:
    """U+2581 is SentencePiece's space marker, so it decodes as a space: the report must say so."""
    model = (trained[0] / "tokenizer.model").read_bytes()
    docs = [HeldOutDocument("plain text", "web", "en"), HeldOutDocument("a\u2581b", "web", "en")]
    report = validation_report(model, docs, longest=5, threads=1)
    assert report["round_trip"]["exact"] == 1 and report["round_trip"]["rate"] == 0.5
    assert report["round_trip"]["failures"][0]["at_char"] == 1
