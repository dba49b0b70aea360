"""One document's text split into lines, paragraphs and words once, shared by every rule set.

Each view is a ``cached_property``: a rule set that short-circuits early never pays for views it
does not reach, and views two rule sets share (words, duplicate lines) are computed once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import cached_property

from gemmaflow.pipeline.heuristics.words import words

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")

TERMINAL_PUNCTUATION: tuple[str, ...] = (".", "!", "?", '"', "'", "…", "。", "！", "？")
"""Sentence-final characters for C4's and FineWeb's "ends in punctuation", CJK full-width forms included."""


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, 0.0 for an empty denominator (empty or one-word documents)."""
    return numerator / denominator if denominator else 0.0


def duplicate_stats(items: list[str]) -> tuple[int, int]:
    """(number of items repeating an earlier item, characters in those repeats).

    Gopher's definition: the first occurrence is original, every later copy is a duplicate.
    """
    if len(set(items)) == len(items):
        return 0, 0
    counts = Counter(items)
    dup_items = 0
    dup_chars = 0
    for item, count in counts.items():
        if count > 1:
            dup_items += count - 1
            dup_chars += len(item) * (count - 1)
    return dup_items, dup_chars


class TextStats:
    """Lazily computed views of ``text``; build one per (possibly edited) text."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    @cached_property
    def raw_lines(self) -> list[str]:
        """All lines, blank ones included (code rules measure every line)."""
        return self.text.split("\n")

    @cached_property
    def lines(self) -> list[str]:
        """Non-blank lines without trailing whitespace (indentation kept)."""
        return [line.rstrip() for line in self.raw_lines if line and not line.isspace()]

    @cached_property
    def prose_lines(self) -> list[str]:
        """Non-blank lines ending in terminal punctuation: sentence-like lines rather than headings,
        table cells or code."""
        return [line for line in self.lines if line.endswith(TERMINAL_PUNCTUATION)]

    @cached_property
    def paragraphs(self) -> list[str]:
        """Blocks separated by blank lines."""
        stripped = self.text.strip()
        return _PARAGRAPH_BREAK.split(stripped) if stripped else []

    @cached_property
    def words(self) -> list[str]:
        """Whitespace-separated tokens, as in the Gopher paper."""
        return self.text.split()

    def tokens(self, tokenizer: str) -> Sequence[str]:
        """Words under ``tokenizer`` ("whitespace" is ``words``); see ``heuristics.words``."""
        return self.words if tokenizer == "whitespace" else words(self.text, tokenizer)

    @cached_property
    def word_lengths(self) -> list[int]:
        return list(map(len, self.words))

    @cached_property
    def word_chars(self) -> int:
        """Characters in words (whitespace excluded): the n-gram fractions' denominator."""
        return sum(self.word_lengths)

    @cached_property
    def line_duplicates(self) -> tuple[int, int]:
        """``duplicate_stats`` of ``lines``: shared by Gopher repetition and FineWeb."""
        return duplicate_stats(self.lines)

    @cached_property
    def paragraph_duplicates(self) -> tuple[int, int]:
        return duplicate_stats(self.paragraphs)
