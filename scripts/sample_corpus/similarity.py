"""Word-5-gram Jaccard similarity: the measure the sample's duplicate labels record.

Kept local on purpose. The project's n-grams (`gemmaflow.pipeline.shingles`) take words as runs of
word characters, so punctuation and case never count; here words are whitespace-separated and
lower-cased, as when the sample was first built. Switching changes the near copies' `dup_jaccard`
labels and the README's Jaccard figures (and could change which junk pages get redrawn, and with
that every later random draw), so the bundled sample would no longer match.
"""

from __future__ import annotations

from collections import Counter

NEAR_DUP_SCREEN = 0.35  # Jaccard above which two unrelated documents count as near duplicates


def shingles(text: str, n: int = 5) -> set[str]:
    """Lower-cased word n-grams, the unit MinHash near-dedupe (datatrove: word 5-grams) compares."""
    words = text.lower().split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDupIndex:
    """Inverted index of word 5-grams, so screening every document against every other stays fast."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}
        self.postings: dict[str, list[str]] = {}

    def similar(self, text: str) -> list[tuple[float, str]]:
        """(Jaccard, key) of every indexed text sharing a 5-gram with `text`, most similar first."""
        grams = shingles(text)
        overlap: Counter[str] = Counter()
        for gram in grams:
            overlap.update(self.postings.get(gram, ()))
        scores = [(common / (len(grams) + len(self.sets[key]) - common), key) for key, common in overlap.items()]
        return sorted(scores, key=lambda s: (-s[0], s[1]))

    def most_similar(self, text: str) -> tuple[float, str | None]:
        scores = self.similar(text)
        return scores[0] if scores else (0.0, None)

    def add(self, key: str, text: str) -> None:
        grams = shingles(text)
        self.sets[key] = grams
        for gram in grams:
            self.postings.setdefault(gram, []).append(key)
