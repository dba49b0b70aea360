"""Benchmark decontamination: which benchmark item, if any, a document contains (no Beam here).

A document is contaminated by an item when they share a word n-gram (13 by default, as GPT-3 and
NeMo Curator do): words are `pipeline.shingles` words, so case, punctuation and spacing changes
do not hide a pasted item. Each item's configured fields are indexed on their own and joined, so a
question pasted without its answer, or with "Answer:" between the two, still matches. A field
shorter than `ngram` words is indexed whole when it has at least `min_ngram` words (NeMo's rule);
shorter fields ("True", "xxd") would match everywhere and are not indexed alone.

The index is two sorted numpy arrays (n-gram hash, item number): 12 bytes per n-gram, small enough
to be a Beam side input for benchmark suites of millions of n-grams.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gemmaflow.pipeline.shingles import ngram_hashes, ngram_hashes_by_length, token_hashes, word_spans


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark question (or passage): where it comes from and the texts to index."""

    benchmark: str  # the benchmark's name: its file name without extensions
    item_id: str
    texts: tuple[str, ...]  # the configured fields present in the record, in configured order


@dataclass(frozen=True)
class Match:
    """The item a document matched best (most distinct shared n-grams) and where the matches are."""

    benchmark: str
    item_id: str
    ngrams: int  # distinct n-grams of the item found in the document
    word_ranges: tuple[tuple[int, int], ...]  # [start, end) word ranges of every matched n-gram, any item


def benchmark_name(path: str) -> str:
    """`.../mmlu_test.jsonl.gz` -> `mmlu_test`: the name per-benchmark counts are reported under."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.split(".", 1)[0] or name


def _field_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):  # e.g. multiple-choice options
        return [v for v in value if isinstance(v, str)]
    return []


def item_from_line(
    line: str, benchmark: str, position: int, fields: Sequence[str], id_field: str
) -> BenchmarkItem | None:
    """Parse one JSONL line of a benchmark file; None for a blank line or a record with no configured field."""
    if not line.strip():
        return None
    record = json.loads(line)
    if not isinstance(record, dict):
        return None
    texts = tuple(text for name in fields for text in _field_texts(record.get(name)) if text.strip())
    if not texts:
        return None
    raw_id = record.get(id_field)
    item_id = str(raw_id) if raw_id not in (None, "") else f"{benchmark}:{position}"
    return BenchmarkItem(benchmark, item_id, texts)


def item_ngrams(item: BenchmarkItem, ngram: int, min_ngram: int) -> dict[int, np.ndarray]:
    """The n-gram hashes that mark a document as containing `item`, by n-gram length (uint64, distinct).

    Length `ngram` for every text of at least `ngram` words; a text of `min_ngram` to `ngram - 1`
    words is one n-gram of its own length.
    """
    parts = [token_hashes(text) for text in item.texts]
    sequences = parts if len(parts) == 1 else [*parts, np.concatenate(parts)]
    by_length: dict[int, list[np.ndarray]] = {}
    for words in sequences:
        if len(words) >= min_ngram:
            by_length.setdefault(min(len(words), ngram), []).append(ngram_hashes(words, ngram))
    return {length: np.unique(np.concatenate(found)) for length, found in by_length.items()}


class BenchmarkIndex:
    """Sorted n-gram hashes of every item, each with the number of the item it belongs to, and item names."""

    def __init__(
        self, items: Sequence[BenchmarkItem], grams: np.ndarray, owners: np.ndarray, lengths: Iterable[int]
    ) -> None:
        order = np.lexsort((owners, grams))
        self.names = tuple((item.benchmark, item.item_id) for item in items)  # the texts are not kept
        self.grams = grams[order]
        self.owners = owners[order]
        self.lengths = tuple(sorted(set(lengths)))  # the n-gram lengths indexed (min_ngram..ngram)

    @classmethod
    def build(cls, items: Iterable[BenchmarkItem], ngram: int, min_ngram: int) -> BenchmarkIndex:
        """Index `items`, sorted by (benchmark, id) so the same files always give the same index."""
        ordered = sorted(set(items), key=lambda item: (item.benchmark, item.item_id, item.texts))
        per_item = [item_ngrams(item, ngram, min_ngram) for item in ordered]
        tables = [(number, hashes) for number, found in enumerate(per_item) for hashes in found.values()]
        grams = np.concatenate([np.zeros(0, dtype=np.uint64)] + [hashes for _, hashes in tables])
        owners = np.concatenate([np.zeros(0, dtype=np.int32)] + [np.full(len(h), n, dtype=np.int32) for n, h in tables])
        return cls(ordered, grams, owners, {length for found in per_item for length in found})

    def __len__(self) -> int:
        return len(self.grams)

    def match(self, text: str) -> Match | None:
        """The item `text` shares the most n-grams with (ties: first in index order), or None."""
        words = token_hashes(text)
        lengths = [length for length in self.lengths if length <= len(words)]
        if not lengths or not len(self.grams):
            return None
        shared: dict[int, set[int]] = {}
        ranges: list[tuple[int, int]] = []
        for length, hashes in ngram_hashes_by_length(words, lengths).items():
            first = np.searchsorted(self.grams, hashes)
            for start in np.flatnonzero(self.grams[np.minimum(first, len(self.grams) - 1)] == hashes):
                gram = hashes[start]
                ranges.append((int(start), int(start) + length))
                last = np.searchsorted(self.grams, gram, side="right")
                for owner in self.owners[first[start] : last]:
                    shared.setdefault(int(owner), set()).add(int(gram))
        if not shared:
            return None
        best = min(shared, key=lambda owner: (-len(shared[owner]), owner))
        return Match(*self.names[best], len(shared[best]), tuple(sorted(set(ranges))))


def covered_words(word_ranges: Iterable[tuple[int, int]]) -> int:
    """How many distinct words the (possibly overlapping) word ranges cover."""
    return len({word for start, end in word_ranges for word in range(start, end)})


def redact(text: str, word_ranges: Sequence[tuple[int, int]], marker: str = "") -> str:
    """`text` with the characters from the first to the last word of each word range replaced by `marker`.

    Overlapping and adjacent ranges merge into one passage, so one pasted item leaves one marker.
    """
    spans = word_spans(text)
    merged: list[list[int]] = []
    for start, end in sorted(word_ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, cursor = [], 0
    for start, end in merged:
        pieces += [text[cursor : spans[start][0]], marker]
        cursor = spans[end - 1][1]
    pieces.append(text[cursor:])
    return "".join(pieces)
