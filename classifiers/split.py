"""Deterministic train/validation split by a hash of each example's group key, never by row order.

The group key is a source (a file, a site, a collection): every example of one source lands on the
same side, so validation figures measure how the model does on sources it never saw. Without a
group key the text itself is hashed, which still keeps exact duplicates on one side.
"""

from __future__ import annotations

import hashlib

DEFAULT_SPLIT_SEED = "gemmaflow-classifier-split-v1"


def split_fraction(key: str, seed: str = DEFAULT_SPLIT_SEED) -> float:
    """A uniform number in [0, 1) that depends only on `seed` and `key`."""
    digest = hashlib.blake2b(f"{seed}|{key}".encode("utf-8", errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_validation(key: str, valid_fraction: float, seed: str = DEFAULT_SPLIT_SEED) -> bool:
    """True when the group `key` belongs to the validation split."""
    return split_fraction(key, seed) < valid_fraction
