"""Exact deduplication: a content hash per document and a deterministic survivor per hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


def text_hash(text: str) -> str:
    """128-bit BLAKE2b of the normalised text: collisions are negligible at any corpus size."""
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=16).hexdigest()


def _survivor_key(doc: dict[str, Any]) -> tuple[str, str, int]:
    provenance = doc.get("provenance") or {}
    return doc["id"], provenance.get("file") or "", provenance.get("position") or 0


def split_survivor(docs: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The document with the smallest id survives (ties broken by input position); the rest are duplicates.

    Independent of the order the runner delivers the group in, so every runner keeps the same one.
    """
    ordered = sorted(docs, key=_survivor_key)
    if not ordered:
        raise ValueError("an exact-duplicate group cannot be empty")
    return ordered[0], ordered[1:]
