"""Gopher repetition rules, each just inside and just outside its limit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gemmaflow.pipeline.heuristics import gopher_repetition
from gemmaflow.pipeline.heuristics.config import GopherRepetitionConfig
from gemmaflow.pipeline.heuristics.gopher_repetition import WordNgrams
from gemmaflow.pipeline.heuristics.text_stats import TextStats

NEVER = 1e9
# Every limit out of reach: a test sets the one limit it exercises.
LOOSE = GopherRepetitionConfig(
    max_dup_line_fraction=NEVER,
    max_dup_para_fraction=NEVER,
    max_dup_line_char_fraction=NEVER,
    max_dup_para_char_fraction=NEVER,
    top_ngram_max_fractions=(NEVER,) * 3,
    dup_ngram_max_fractions=(NEVER,) * 6,
)


def run(text: str, cfg: GopherRepetitionConfig) -> tuple[str | None, dict[str, float]]:
    signals: dict[str, float] = {}
    return gopher_repetition.check(TextStats(text), cfg, signals), signals


def inside_and_outside(text: str, limit: str, signal: str, expected: float) -> tuple[str | None, str | None]:
    """Reasons with config field ``limit`` set exactly at the measured value, then just below it."""
    kept, signals = run(text, replace(LOOSE, **{limit: expected}))
    assert signals[f"gopher_repetition.{signal}"] == pytest.approx(expected)
    dropped, _ = run(text, replace(LOOSE, **{limit: expected - 1e-9}))
    return kept, dropped


def test_duplicate_line_fraction(words):
    lines = words(7) + ["aaaaa"] * 3  # 3 of 10 lines repeat the first
    assert inside_and_outside("\n".join(lines), "max_dup_line_fraction", "dup_line_fraction", 0.3) == (
        None,
        "too_many_duplicate_lines",
    )


def test_duplicate_paragraph_fraction(words):
    text = "\n\n".join([*words(3), "aaaaa"])  # 1 of 4 paragraphs repeats the first
    assert inside_and_outside(text, "max_dup_para_fraction", "dup_para_fraction", 0.25) == (
        None,
        "too_many_duplicate_paragraphs",
    )


def test_duplicate_line_char_fraction():
    text = "abcd\nxy\nabcd\nzz"  # the repeat holds 4 of 15 characters
    assert inside_and_outside(text, "max_dup_line_char_fraction", "dup_line_char_fraction", 4 / 15) == (
        None,
        "too_many_duplicate_line_chars",
    )


def test_duplicate_paragraph_char_fraction():
    text = "abcd\n\nxy\n\nabcd"  # the repeat holds 4 of 14 characters
    assert inside_and_outside(text, "max_dup_para_char_fraction", "dup_para_char_fraction", 4 / 14) == (
        None,
        "too_many_duplicate_paragraph_chars",
    )


@pytest.mark.parametrize("n", [2, 3, 4])
def test_top_ngram_char_fraction(words, n):
    gram = words(n, length=3)
    filler = words(10, length=4)[-10:]
    text = " ".join(gram + filler[:5] + gram + filler[5:])  # the n-gram twice among distinct words
    expected = 2 * 3 * n / (2 * 3 * n + 10 * 4)
    limits = tuple(expected if i == n - 2 else NEVER for i in range(3))
    kept, signals = run(text, replace(LOOSE, top_ngram_max_fractions=limits))
    assert kept is None and signals[f"gopher_repetition.top_{n}gram_char_fraction"] == pytest.approx(expected)
    below = tuple(limit - 1e-9 for limit in limits)
    assert run(text, replace(LOOSE, top_ngram_max_fractions=below))[0] == f"top_{n}gram_too_frequent"


@pytest.mark.parametrize("n", range(5, 11))
def test_dup_ngram_char_fraction_counts_each_covered_word_once(words, n):
    repeated = words(10)
    text = " ".join(repeated + words(26)[10:] + repeated)  # 10-word run twice: 20 of 36 words covered
    expected = 20 / 36  # all words have 5 characters, whatever n <= 10
    # Limits for smaller n out of reach, so n is evaluated only when its own limit is below the value.
    limits = tuple(NEVER if i < n - 5 else expected for i in range(6))
    kept, signals = run(text, replace(LOOSE, dup_ngram_max_fractions=limits))
    assert kept is None
    assert signals["gopher_repetition.dup_5gram_char_fraction"] == pytest.approx(expected)
    below = tuple(NEVER if i < n - 5 else expected - 1e-9 for i in range(6))
    dropped, signals = run(text, replace(LOOSE, dup_ngram_max_fractions=below))
    assert dropped == f"too_many_duplicate_{n}grams"
    assert signals[f"gopher_repetition.dup_{n}gram_char_fraction"] == pytest.approx(expected)


def test_larger_ngrams_are_skipped_once_coverage_is_within_all_remaining_limits(words):
    text = " ".join(words(30))  # nothing repeats
    _, signals = run(text, GopherRepetitionConfig())
    assert signals["gopher_repetition.dup_5gram_char_fraction"] == 0.0
    assert "gopher_repetition.dup_6gram_char_fraction" not in signals


def test_larger_ngrams_are_checked_while_coverage_exceeds_a_remaining_limit(words):
    repeated = words(6)
    text = " ".join(repeated + words(20)[6:] + repeated)  # coverage 12/26 for n = 5 and 6, 0 for 7
    cfg = replace(LOOSE, dup_ngram_max_fractions=(0.9, 0.9, 0.1, 0.1, 0.1, 0.1))
    assert run(text, cfg)[0] is None
    _, signals = run(text, cfg)
    assert signals["gopher_repetition.dup_7gram_char_fraction"] == 0.0


def test_most_frequent_ngram_ties_resolve_to_the_longest():
    ngrams = WordNgrams(TextStats("a b a b xxxx yyyy xxxx yyyy"))  # "a b" and "xxxx yyyy" both twice
    assert ngrams.top_char_fraction(2) == pytest.approx(2 * 8 / 20)


@pytest.mark.parametrize("text", ["", "word", "two words"])
def test_short_texts_have_no_repetition(text):
    assert run(text, GopherRepetitionConfig()) == (
        None,
        {
            "gopher_repetition.dup_line_fraction": 0.0,
            "gopher_repetition.dup_para_fraction": 0.0,
            "gopher_repetition.dup_line_char_fraction": 0.0,
            "gopher_repetition.dup_para_char_fraction": 0.0,
            "gopher_repetition.top_2gram_char_fraction": 0.0,
            "gopher_repetition.top_3gram_char_fraction": 0.0,
            "gopher_repetition.top_4gram_char_fraction": 0.0,
            "gopher_repetition.dup_5gram_char_fraction": 0.0,
        },
    )


def test_repeated_line_spam_fails_with_default_limits():
    assert run("Buy cheap pills now.\n" * 50, GopherRepetitionConfig())[0] == "too_many_duplicate_lines"
