"""Gopher quality rules and the two measured extensions, each just inside and just outside its limit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gemmaflow.pipeline.heuristics import gopher_quality
from gemmaflow.pipeline.heuristics.config import GopherQualityConfig
from gemmaflow.pipeline.heuristics.text_stats import TextStats

DEFAULT = GopherQualityConfig()


def run(text: str, cfg: GopherQualityConfig = DEFAULT) -> tuple[str | None, dict[str, float]]:
    signals: dict[str, float] = {}
    return gopher_quality.check(TextStats(text), cfg, signals), signals


def test_constructed_prose_passes_every_rule(prose):
    reason, signals = run(prose(60))
    assert reason is None
    assert signals["gopher_quality.stop_word_count"] == 30
    assert signals["gopher_quality.prose_stop_word_fraction"] == 0.5


def test_word_count_limits(prose):
    assert run(prose(40))[0] is None  # default minimum 40
    assert run(prose(39))[0] == "too_few_words"
    assert run(prose(60), replace(DEFAULT, max_words=60))[0] is None
    assert run(prose(61), replace(DEFAULT, max_words=60))[0] == "too_many_words"


def test_mean_word_length_limits(prose):
    text = prose(60)
    mean = run(text)[1]["gopher_quality.mean_word_length"]
    assert mean == pytest.approx((30 * 3 + 30 * 5 + 6) / 60)  # "the", 5-letter words, 6 full stops
    assert run(text, replace(DEFAULT, min_mean_word_length=mean))[0] is None
    assert run(text, replace(DEFAULT, min_mean_word_length=mean + 0.01))[0] == "mean_word_length_too_short"
    assert run(text, replace(DEFAULT, max_mean_word_length=mean))[0] is None
    assert run(text, replace(DEFAULT, max_mean_word_length=mean - 0.01))[0] == "mean_word_length_too_long"


@pytest.mark.parametrize(
    ("symbol", "reason", "field"),
    [
        ("#", "too_many_hashes", "max_symbol_word_ratio"),
        ("...", "too_many_ellipses", "max_symbol_word_ratio"),
        ("…", "too_many_ellipses", "max_symbol_word_ratio"),
        ("https://", "too_many_urls", "max_url_word_ratio"),
    ],
)
def test_symbol_to_word_ratios(prose, symbol, reason, field):
    base = prose(60).split("\n")
    text = "\n".join(line + " " + symbol + "x" for line in base)  # 6 symbols in 66 words
    assert run(text, replace(DEFAULT, **{field: 6 / 66}))[0] is None
    assert run(text, replace(DEFAULT, **{field: 6 / 66 - 1e-9}))[0] == reason


def test_bullet_line_fraction(prose):
    lines = prose(60).split("\n")
    text = "\n".join(["- " + line for line in lines[:3]] + ["  • " + line for line in lines[3:4]] + lines[4:])
    assert run(text)[1]["gopher_quality.bullet_line_fraction"] == pytest.approx(4 / 6)
    assert run(text, replace(DEFAULT, max_bullet_line_fraction=4 / 6))[0] is None
    assert run(text, replace(DEFAULT, max_bullet_line_fraction=4 / 6 - 1e-9))[0] == "too_many_bullet_lines"


def test_ellipsis_line_fraction(prose):
    lines = prose(60).split("\n")
    text = "\n".join([line[:-1] + "…" for line in lines[:2]] + lines[2:])  # 2 of 6 lines trail off
    assert run(text, replace(DEFAULT, max_ellipsis_line_fraction=2 / 6))[0] is None
    assert run(text)[0] == "too_many_ellipsis_lines"  # default 0.3 < 1/3


def test_alpha_word_fraction(prose):
    text = prose(60) + "\n" + " ".join(["42", "3.14", "--", "(1)", "_"] * 4)  # 20 of 80 words lack a letter
    assert run(text)[1]["gopher_quality.alpha_word_fraction"] == pytest.approx(0.75)
    assert run(text, replace(DEFAULT, min_alpha_word_fraction=0.75))[0] is None
    assert run(text, replace(DEFAULT, min_alpha_word_fraction=0.76))[0] == "too_few_alpha_words"


def test_stop_word_count_matches_whole_words_case_insensitively(words):
    text = " ".join(words(48)) + " The, (with) theory tower"  # "theory", "tower" are not stop words
    reason, signals = run(text)
    assert reason is None and signals["gopher_quality.stop_word_count"] == 2
    assert run(" ".join(words(48)) + " The theory")[0] == "too_few_stop_words"


def test_prose_stop_word_fraction_catches_word_salad(words):
    salad = words(100)
    sentences = [" ".join(salad[i : i + 10]).capitalize() + "." for i in range(0, 100, 10)]
    text = "\n".join(sentences) + "\nThe end and more."  # 2 stop words in 104 prose words: 0.019
    reason, signals = run(text)
    assert reason == "too_few_stop_words_in_prose"  # default minimum 0.02
    assert signals["gopher_quality.prose_stop_word_fraction"] == pytest.approx(2 / 104)
    assert run(text, replace(DEFAULT, min_prose_stop_word_fraction=2 / 104))[0] is None


def test_prose_stop_word_fraction_ignores_tables_and_listings(words):
    table = "\n".join(" | ".join(words(60)[i : i + 3]) for i in range(0, 60, 3))  # no sentence-like line
    reason, signals = run(table + "\nSee the table and the notes")
    assert reason is None and "gopher_quality.prose_stop_word_fraction" not in signals


def test_prose_stop_word_fraction_needs_enough_prose_words(words):
    text = " ".join(words(50)) + "\n" + " ".join(words(19)).capitalize() + ". The and the and"
    _, signals = run(text)
    assert "gopher_quality.prose_stop_word_fraction" not in signals  # 19 prose words < 20


@pytest.mark.parametrize("text", ["", "word", "\n\n"])
def test_empty_and_one_word_texts_do_not_crash(text):
    reason, signals = run(text)
    assert reason == "too_few_words" and signals["gopher_quality.word_count"] == len(text.split())
