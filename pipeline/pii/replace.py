"""Turning detections into edited text: overlap resolution, then replacement right to left.

Plain functions over (start, end, entity) spans, no presidio types, so they are tested with
hand-written spans. Overlaps are resolved by a total order (entity priority, then length, then
position, then name), so the same detections always give the same text whatever order the
recognisers reported them in.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gemmaflow.pipeline.pii import entities as E


@dataclass(frozen=True)
class Span:
    """A detection: text[start:end] is an instance of `entity` (a presidio entity name)."""

    start: int
    end: int
    entity: str


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """A non-overlapping subset of `spans`, sorted by start.

    Greedy in a fixed order: higher entity priority first (entities.PRIORITY), then the longer span,
    then the earlier one, then the entity name. A span is kept if it overlaps nothing kept before it.
    """
    ranked = sorted(
        {s for s in spans if s.end > s.start},
        key=lambda s: (-E.PRIORITY.get(s.entity, 0), -(s.end - s.start), s.start, s.entity),
    )
    starts: list[int] = []
    kept: list[Span] = []  # sorted by start, pairwise disjoint
    for span in ranked:
        i = bisect.bisect_left(starts, span.start)
        if i > 0 and kept[i - 1].end > span.start:
            continue
        if i < len(kept) and kept[i].start < span.end:
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return kept


def placeholder(entity: str, placeholder_format: str = "<{label}>") -> str:
    """The typed placeholder for `entity`, e.g. `<EMAIL>` for EMAIL_ADDRESS."""
    return placeholder_format.format(label=E.PLACEHOLDER_LABELS.get(entity, entity))


def pseudonym(entity: str, value: str, n: int, placeholder_format: str = "<{label}>") -> str:
    """The n-th (1-based) distinct value of `entity` in a document, as a harmless stand-in.

    Stand-ins come from ranges reserved for documentation, so they can never be someone's data:
    example.com (RFC 2606), 555-01xx (NANP fictional numbers), 192.0.2.0/24 (RFC 5737),
    2001:db8::/32 (RFC 3849). Types without such a range get a numbered placeholder (`<SSN_2>`).
    """
    if entity == E.EMAIL_ADDRESS:
        return f"person{n}@example.com"
    if entity == E.PHONE_NUMBER and n < 100:
        return f"+1-555-01{n:02d}"
    if entity == E.IP_ADDRESS and ":" in value:
        return f"2001:db8::{n:x}"
    if entity == E.IP_ADDRESS and n < 255:
        return f"192.0.2.{n}"
    if entity == E.URL:
        return f"https://example.com/{n}"
    if entity == E.PERSON:
        return f"Person {n}"
    label = E.PLACEHOLDER_LABELS.get(entity, entity)
    return placeholder_format.format(label=f"{label}_{n}")


def replace_spans(
    text: str,
    spans: Iterable[Span],
    policies: Mapping[str, str],
    default_policy: str = "placeholder",
    placeholder_format: str = "<{label}>",
) -> tuple[str, dict[str, int]]:
    """Replace every span of `resolve_overlaps(spans)`; returns the new text and replacements per entity.

    `policies` maps an entity to `placeholder` or `pseudonym` (others use `default_policy`).
    Pseudonyms are numbered by first appearance from the left, so a value seen twice in a document
    gets the same stand-in both times. Replacement runs right to left: every span's offsets refer
    to the original text, and edits to the right of a span never move it.
    """
    kept = resolve_overlaps(spans)
    if not kept:
        return text, {}
    replacements: list[str] = []
    numbers: dict[tuple[str, str], int] = {}
    per_entity: dict[str, int] = {}
    for span in kept:  # left to right: pseudonym numbering follows reading order
        value = text[span.start : span.end]
        if policies.get(span.entity, default_policy) == "pseudonym":
            key = (span.entity, value)
            if key not in numbers:
                numbers[key] = per_entity[span.entity] = per_entity.get(span.entity, 0) + 1
            replacements.append(pseudonym(span.entity, value, numbers[key], placeholder_format))
        else:
            replacements.append(placeholder(span.entity, placeholder_format))
    pieces: list[str] = []
    tail = len(text)
    for span, replacement in zip(reversed(kept), reversed(replacements), strict=True):
        pieces.append(text[span.end : tail])
        pieces.append(replacement)
        tail = span.start
    pieces.append(text[:tail])
    counts: dict[str, int] = {}
    for span in kept:
        counts[span.entity] = counts.get(span.entity, 0) + 1
    return "".join(reversed(pieces)), counts
