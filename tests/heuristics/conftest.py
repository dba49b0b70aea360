"""Text builders shared by the heuristics tests (constructed texts, no corpus files)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from string import ascii_lowercase

import pytest


def distinct_words(count: int, length: int = 5) -> list[str]:
    """``count`` different lower-case letter-only words of ``length`` characters ("baaaa", "caaaa", ...)."""
    letters = product(ascii_lowercase, repeat=length)
    return ["".join(reversed(next(letters))) for _ in range(count)]


def make_prose(n_words: int, words_per_sentence: int = 10) -> str:
    """English-like prose: sentences of distinct content words glued by stop words, no repeated n-gram
    longer than 2 ("the <w>" pairs are all different), one sentence per line."""
    content = iter(distinct_words(n_words))
    words = [next(content) if i % 2 else "the" for i in range(n_words)]
    sentences = [words[i : i + words_per_sentence] for i in range(0, n_words, words_per_sentence)]
    return "\n".join(" ".join(s).capitalize() + "." for s in sentences)


@pytest.fixture
def prose() -> Callable[..., str]:
    return make_prose


@pytest.fixture
def words() -> Callable[..., list[str]]:
    return distinct_words
