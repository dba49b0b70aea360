"""Exact deduplication: a content hash per document and a deterministic survivor per hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def text_hash(text: str) -> str:
    """128-bit BLAKE2b of the normalised text: collisions are negligible at any corpus size."""
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=16).hexdigest()


def split_survivor(items: Iterable[T], order: Callable[[T], Any]) -> tuple[T, list[T]]:
    """The smallest item by `order` survives; the rest are duplicates.

    Independent of the order the runner delivers the group in, so every runner keeps the same one.
    """
    ordered = sorted(items, key=order)
    if not ordered:
        raise ValueError("an exact-duplicate group cannot be empty")
    return ordered[0], ordered[1:]
