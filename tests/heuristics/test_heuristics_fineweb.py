"""FineWeb rules (datatrove semantics), each just inside and just outside its limit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gemmaflow.pipeline.heuristics import fineweb
from gemmaflow.pipeline.heuristics.config import FineWebConfig
from gemmaflow.pipeline.heuristics.text_stats import TextStats

# datatrove's thresholds, so each test exercises the rule rather than our loosened defaults.
DATATROVE = FineWebConfig(
    min_line_punct_fraction=0.12,
    max_short_line_fraction=0.67,
    max_dup_line_char_fraction=0.01,
    max_newline_word_ratio=0.3,
)
SENTENCE = "This is a reasonably long line of text that ends properly."  # 59 characters, 11 words


def run(text: str, cfg: FineWebConfig = DATATROVE) -> tuple[str | None, dict[str, float]]:
    signals: dict[str, float] = {}
    return fineweb.check(TextStats(text), cfg, signals), signals


def test_line_punctuation_fraction():
    text = "\n".join([SENTENCE] + [f"heading number {i} without a stop" for i in range(4)])  # 1 of 5
    reason, signals = run(text, replace(DATATROVE, min_line_punct_fraction=0.2))
    assert reason is None and signals["fineweb.line_punct_fraction"] == pytest.approx(0.2)
    reason, _ = run(text, replace(DATATROVE, min_line_punct_fraction=0.21))
    assert reason == "too_few_lines_end_in_punctuation"


def test_short_line_fraction():
    text = "\n".join([SENTENCE, SENTENCE.upper(), "Short one.", "Another short."])  # 2 of 4 short
    reason, signals = run(text, replace(DATATROVE, max_short_line_fraction=0.5, max_dup_line_char_fraction=1))
    assert reason is None and signals["fineweb.short_line_fraction"] == 0.5
    assert run(text, replace(DATATROVE, max_short_line_fraction=0.49))[0] == "too_many_short_lines"


def test_duplicate_line_char_fraction_uses_characters_without_newlines():
    text = "\n".join([SENTENCE, SENTENCE, SENTENCE.lower()])
    expected = 59 / (3 * 59)
    cfg = replace(DATATROVE, max_dup_line_char_fraction=expected, max_newline_word_ratio=1)
    reason, signals = run(text, cfg)
    assert reason is None and signals["fineweb.dup_line_char_fraction"] == pytest.approx(expected)
    reason, _ = run(text, replace(cfg, max_dup_line_char_fraction=expected - 1e-9))
    assert reason == "too_many_duplicate_line_chars"


def test_newline_to_word_ratio():
    text = "\n".join([SENTENCE, SENTENCE.lower(), SENTENCE.upper()])  # 2 newlines, 33 words
    reason, signals = run(text, replace(DATATROVE, max_newline_word_ratio=2 / 33))
    assert reason is None and signals["fineweb.newline_word_ratio"] == pytest.approx(2 / 33)
    assert run(text, replace(DATATROVE, max_newline_word_ratio=2 / 33 - 1e-9))[0] == "too_many_newlines"


@pytest.mark.parametrize(("text", "expected"), [("", None), ("word.", "too_many_short_lines")])
def test_empty_and_one_word_texts_do_not_crash(text, expected):
    reason, signals = run(text, FineWebConfig())
    assert reason == expected and signals["fineweb.line_punct_fraction"] == len(text.split())
