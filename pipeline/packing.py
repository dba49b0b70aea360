"""Packing token sequences into rows of exactly `seq_len` tokens: chunking and best-fit decreasing.

A document longer than `seq_len` is cut into full rows of `seq_len` tokens plus a tail; tails and
whole documents are then packed by best-fit decreasing (each goes to the fullest row it still
fits in; "Fewer Truncations Improve Language Modeling", 2024), so no document that fits in a row
is ever split and padding is left only where nothing fits.

The unit the caller shuffles is a list of rows that must stay together and in order: a row of
packed pieces, preceded by the full-row chunks of every document whose tail it holds, so a split
document's chunks always appear in order in consecutive rows.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class PackItem(NamedTuple):
    """One tokenized document (or SFT example) to pack; `loss_mask` None means every token is a target."""

    key: str  # unique within the split; orders the window so the runner's delivery order does not matter
    domain: str  # what the shards' tokens_per_domain counts it under (SFT: the record's category)
    tokens: np.ndarray  # int32
    loss_mask: np.ndarray | None = None  # uint8, same length as tokens
    group: str = ""  # its mixture group: pack's domain, SFT's source


class Piece(NamedTuple):
    """A contiguous run of one item's tokens inside a row: one segment."""

    tokens: np.ndarray
    loss_mask: np.ndarray | None
    domain: str


Row = list[Piece]
Unit = list[Row]


@dataclass
class WindowStats:
    documents: int = 0
    documents_split: int = 0  # documents cut into more than one chunk
    chunks: int = 0


def best_fit_decreasing(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `sizes` per bin: largest item first, each into the bin with the least room that fits it.

    Ties (equal sizes) keep input order; full bins leave the search. O(n log n) plus list inserts.
    """
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    bins: list[list[int]] = []
    open_space: list[tuple[int, int]] = []  # (room left, bin index), sorted
    for i in order:
        size = sizes[i]
        if size > capacity:
            raise ValueError(f"item of {size} tokens does not fit a row of {capacity}")
        j = bisect_left(open_space, (size, -1))
        if j == len(open_space):
            bins.append([i])
            room, index = capacity - size, len(bins) - 1
        else:
            room, index = open_space.pop(j)
            bins[index].append(i)
            room -= size
        if room > 0:
            insort(open_space, (room, index))
    return bins


def _piece(item: PackItem, start: int, stop: int) -> Piece:
    mask = None if item.loss_mask is None else item.loss_mask[start:stop]
    return Piece(item.tokens[start:stop], mask, item.domain)


def pack_window(items: Sequence[PackItem], seq_len: int) -> tuple[list[Unit], WindowStats]:
    """Pack one window of items into units of rows (see the module docstring); every token is kept once."""
    ordered = sorted(items, key=lambda item: item.key)
    stats = WindowStats(documents=len(ordered))
    chunk_rows: dict[int, list[Row]] = {}
    tails: list[tuple[int, Piece]] = []
    units: list[Unit] = []
    for index, item in enumerate(ordered):
        length = len(item.tokens)
        full, rest = divmod(length, seq_len)
        rows = [[_piece(item, k * seq_len, (k + 1) * seq_len)] for k in range(full)]
        stats.chunks += full + (1 if rest else 0)
        if length > seq_len:
            stats.documents_split += 1
        if rest:
            chunk_rows[index] = rows
            tails.append((index, _piece(item, full * seq_len, length)))
        elif rows:
            units.append(rows)
    for members in best_fit_decreasing([len(piece.tokens) for _, piece in tails], seq_len):
        preceding = [row for m in members for row in chunk_rows[tails[m][0]]]
        units.append([*preceding, [tails[m][1] for m in members]])
    return units, stats
