"""MinHash signatures, LSH banding and candidate verification for near-duplicate detection (no Beam here).

Signatures are datasketch's (2.x, default `affine32` scheme): for a shingle hash h and permutation
k, datasketch computes `a_k * fmix32(h) + b_k` in uint32 and keeps the minimum over shingles. We
take the permutation parameters from datasketch itself and do the same arithmetic for all shingles
and permutations at once in numpy, so a signature here equals
`datasketch.MinHash(num_perm, seed, hashfunc=...)` fed the same shingles (a test holds us to it),
several times faster than feeding datasketch one shingle at a time.

The shingle hash is the top 32 bits of `pipeline.shingles.ngram_hash` of each word n-gram.

Bands and rows are not hard-coded: `lsh_shape` asks datasketch's `MinHashLSH` for the (bands, rows)
that minimise the weighted false-positive and false-negative probability at the target threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from gemmaflow.pipeline.shingles import fmix32, ngram_hashes, token_hashes

EMPTY_HASH = np.uint32(0xFFFFFFFF)  # datasketch's initial value: the signature of an empty set
# Shingles are permuted this many at a time: bounds the temporary (num_perm x block) matrix at a few
# MB whatever the document's length.
_SHINGLES_PER_BLOCK = 4096


@dataclass(frozen=True)
class LshShape:
    """How a signature of `num_perm` values is cut into `bands` bands of `rows` values each."""

    num_perm: int
    bands: int
    rows: int

    def __post_init__(self) -> None:
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
            raise ValueError(f"{self.bands} bands x {self.rows} rows do not fit in {self.num_perm} permutations")

    def candidate_probability(self, jaccard: float) -> float:
        """Probability that two documents with this Jaccard similarity share at least one band."""
        return 1.0 - (1.0 - jaccard**self.rows) ** self.bands


def lsh_shape(threshold: float, num_perm: int, false_positive_weight: float = 0.5) -> LshShape:
    """datasketch's optimal (bands, rows) for `threshold`, weighing false positives against false negatives.

    A false positive costs one verification (cheap: signatures are compared exactly afterwards); a
    false negative is a duplicate that is never compared, so callers usually weigh it more.
    """
    weights = (false_positive_weight, 1.0 - false_positive_weight)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return LshShape(num_perm, lsh.b, lsh.r)


def permutations(num_perm: int, seed: int) -> np.ndarray:
    """datasketch's affine32 permutation parameters (a, b) for this seed, shape (2, num_perm), uint32."""
    return np.asarray(MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations, dtype=np.uint32)


def shingle_hashes(text: str, ngram: int) -> np.ndarray:
    """32-bit hashes of the word n-grams of `text` (one for a text shorter than `ngram`, none without words)."""
    return (ngram_hashes(token_hashes(text), ngram) >> np.uint64(32)).astype(np.uint32)


def signature(shingles: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """MinHash signature (uint32, one value per permutation) of a set of 32-bit shingle hashes."""
    a, b = perms[0][:, None], perms[1][:, None]  # (num_perm, 1): shingles run along the contiguous axis
    result = np.full(len(perms[0]), EMPTY_HASH, dtype=np.uint32)
    mixed = fmix32(shingles.astype(np.uint32))
    for start in range(0, len(mixed), _SHINGLES_PER_BLOCK):
        permuted = a * mixed[None, start : start + _SHINGLES_PER_BLOCK]  # (num_perm, block), wraps mod 2^32
        np.add(permuted, b, out=permuted)
        np.minimum(result, permuted.min(axis=1), out=result)
    return result


def band_keys(sig: np.ndarray, shape: LshShape) -> list[bytes]:
    """One key per band: the band's index and its `rows` values, so equal bands in the same slot collide."""
    return [
        band.to_bytes(2, "big") + sig[band * shape.rows : (band + 1) * shape.rows].astype("<u4").tobytes()
        for band in range(shape.bands)
    ]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of permutations on which the two minima agree: an unbiased Jaccard estimate."""
    if sig_a.shape != sig_b.shape:
        raise ValueError("signatures of different lengths cannot be compared")
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


@dataclass(frozen=True)
class Sketch:
    """What travels with a candidate pair for verification: the signature and how it was made."""

    ngram: int
    threshold: float
    values: bytes  # the signature, uint32 little-endian

    @classmethod
    def of(cls, sig: np.ndarray, ngram: int, threshold: float) -> Sketch:
        return cls(ngram, threshold, sig.astype("<u4").tobytes())

    def signature(self) -> np.ndarray:
        return np.frombuffer(self.values, dtype="<u4")


def verified(a: Sketch, b: Sketch) -> bool:
    """Keep a candidate pair only if its estimated Jaccard similarity reaches the stricter of the two thresholds.

    Candidates come from a single shared band, which two documents sharing a long header or footer
    easily have; their whole-signature similarity is what tells them apart from copies.
    """
    if a.ngram != b.ngram or len(a.values) != len(b.values):
        return False
    return estimated_jaccard(a.signature(), b.signature()) >= max(a.threshold, b.threshold)
