"""Seeded hashing for splits and shuffles, and the per-domain mixture plan (how many copies of each document).

Every random-looking decision is a hash of (seed, purpose, key), so it does not depend on which
worker sees a document or in what order: the same input, config and seed give the same output.

The mixture plan reaches its per-domain token targets in one pass over token counts: each domain
is repeated `floor(target / available)` times, and the remaining fraction is a token-weighted
sample of its documents, taken as the documents whose hash bucket is below a cutoff chosen from a
histogram of tokens per bucket. The histogram is fixed-size, so planning needs no list of documents.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gemmaflow.pipeline.pack_config import MixtureConfig

TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)


def seeded_hash(seed: int, *parts: str) -> int:
    """A 64-bit hash of the seed and the parts (BLAKE2b, so stable across processes and Python versions)."""
    blob = "\x1f".join((str(seed), *parts)).encode("utf-8", errors="surrogatepass")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little")


def unit_interval(seed: int, *parts: str) -> float:
    """The seeded hash mapped to [0, 1)."""
    return seeded_hash(seed, *parts) / 2.0**64


def split_of(doc_id: str, validation_fraction: float, seed: int) -> str:
    """Validation is held out by document: every chunk and copy of a document lands in the same split."""
    return VALIDATION if unit_interval(seed, "validation", doc_id) < validation_fraction else TRAIN


def mixture_bucket(doc_id: str, seed: int, buckets: int) -> int:
    return int(unit_interval(seed, "mixture", doc_id) * buckets)


@dataclass
class DomainHistogram:
    """Tokens per mixture bucket of one domain's training documents (a Beam combine accumulator)."""

    tokens: np.ndarray

    @classmethod
    def empty(cls, buckets: int) -> DomainHistogram:
        return cls(np.zeros(buckets, dtype=np.int64))

    def add(self, bucket: int, ntokens: int) -> DomainHistogram:
        self.tokens[bucket] += ntokens
        return self

    def merge(self, other: DomainHistogram) -> DomainHistogram:
        self.tokens += other.tokens
        return self


@dataclass(frozen=True)
class MixturePlan:
    """Copies per domain (`repeats` full passes, plus one more for documents in buckets below `cutoff`)."""

    seed: int
    buckets: int
    weights: dict[str, float] = field(default_factory=dict)  # empty: every document once
    token_budget: int = 0
    available: dict[str, int] = field(default_factory=dict)
    targets: dict[str, int] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)
    cutoff: dict[str, int] = field(default_factory=dict)

    def copies(self, doc_id: str, domain: str) -> int:
        if not self.weights:
            return 1
        if domain not in self.repeats:
            return 0
        extra = mixture_bucket(doc_id, self.seed, self.buckets) < self.cutoff[domain]
        return self.repeats[domain] + int(extra)

    def to_dict(self) -> dict[str, object]:
        return {"weights": self.weights, "token_budget": self.token_budget, "available_tokens": self.available,
                "target_tokens": self.targets}


def _closest_cutoff(tokens: np.ndarray, remainder: float) -> int:
    """The number of leading buckets whose token total is closest to `remainder`."""
    cumulative = np.concatenate([[0], np.cumsum(tokens)])
    right = int(np.searchsorted(cumulative, remainder))
    if right >= len(cumulative):
        return len(tokens)
    left = max(right - 1, 0)
    return left if remainder - cumulative[left] <= cumulative[right] - remainder else right


def plan_mixture(config: MixtureConfig, histograms: Mapping[str, DomainHistogram], seed: int) -> MixturePlan:
    """Copies per domain that hit `weight * budget` training tokens per domain as closely as the buckets allow."""
    available = {domain: int(h.tokens.sum()) for domain, h in sorted(histograms.items())}
    weights = config.normalised()
    if not weights:
        return MixturePlan(seed, config.histogram_buckets, available=available)
    budget = config.token_budget
    if not budget:
        ratios = [available.get(d, 0) / w for d, w in weights.items() if available.get(d, 0) > 0]
        budget = int(min(ratios)) if ratios else 0
    targets, repeats, cutoff = {}, {}, {}
    for domain, weight in weights.items():
        target = round(weight * budget)
        have = available.get(domain, 0)
        targets[domain] = target
        if have == 0:
            continue
        full = math.floor(target / have)
        repeats[domain] = full
        cutoff[domain] = _closest_cutoff(histograms[domain].tokens, target - full * have)
    return MixturePlan(seed, config.histogram_buckets, weights, budget, available, targets, repeats, cutoff)
