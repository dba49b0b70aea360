"""Per-stage accounting: what each stage received, kept and dropped (and why), merged from per-bundle parts.

Stages never share a mutable counter object: each bundle produces its own `StageCounts` part, the
parts are merged by a Beam combine, and the merged table is written next to the output. That is the
same on every runner, and the driver checks the accounting identity from it:
    records read = documents kept + documents dropped + records dead-lettered.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Distribution tallies in `extra` that the run report plots (docs/run-report.md): document length
# (read = before, write = after), detected language (language = before, write = after), domain (write).
LANGUAGE_UNLABELLED = "unlabelled"


def length_key(nbytes: int) -> str:
    """Length histogram key, floor(log2(UTF-8 bytes)): `length_log2.10` holds 1024-2047 bytes (0 and 1 byte: 0)."""
    return f"length_log2.{max(nbytes, 1).bit_length() - 1}"


def language_key(lang: str | None) -> str:
    """Language count key: `lang.en`, or `lang.unlabelled` for documents the language stage does not label (code)."""
    return f"lang.{lang or LANGUAGE_UNLABELLED}"


class AccountingError(RuntimeError):
    """The counts do not add up: some document was lost or counted twice."""


@dataclass
class StageCounts:
    """Counts for one stage: documents and UTF-8 bytes in, kept, dropped per reason, dead-lettered."""

    stage: str
    docs_in: int = 0
    bytes_in: int = 0
    kept: int = 0
    bytes_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # wall time spent inside the stage's per-document function
    extra: dict[str, int] = field(default_factory=dict)  # stage-specific tallies (e.g. mojibake_fixed)

    def record_in(self, nbytes: int, n: int = 1) -> None:
        self.docs_in += n
        self.bytes_in += nbytes * n

    def record_kept(self, nbytes: int) -> None:
        self.kept += 1
        self.bytes_kept += nbytes

    def record_dropped(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def record_dead(self, reason: str) -> None:
        self.dead_lettered[reason] = self.dead_lettered.get(reason, 0) + 1

    def tally(self, key: str, n: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + n

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def total_dead(self) -> int:
        return sum(self.dead_lettered.values())

    def is_empty(self) -> bool:
        return self.docs_in == 0 and not self.extra

    def merge(self, other: StageCounts) -> None:
        if other.stage != self.stage:
            raise ValueError(f"cannot merge counts of {other.stage!r} into {self.stage!r}")
        self.docs_in += other.docs_in
        self.bytes_in += other.bytes_in
        self.kept += other.kept
        self.bytes_kept += other.bytes_kept
        self.seconds += other.seconds
        for mine, theirs in ((self.dropped, other.dropped), (self.dead_lettered, other.dead_lettered),
                             (self.extra, other.extra)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "docs_in": self.docs_in,
            "bytes_in": self.bytes_in,
            "kept": self.kept,
            "bytes_kept": self.bytes_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "dead_lettered": dict(sorted(self.dead_lettered.items())),
            "seconds": round(self.seconds, 6),
            "extra": dict(sorted(self.extra.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageCounts:
        return cls(
            stage=data["stage"],
            docs_in=data["docs_in"],
            bytes_in=data["bytes_in"],
            kept=data["kept"],
            bytes_kept=data["bytes_kept"],
            dropped=dict(data["dropped"]),
            dead_lettered=dict(data["dead_lettered"]),
            seconds=data["seconds"],
            extra=dict(data.get("extra", {})),
        )


def merge_parts(parts: Iterable[StageCounts]) -> dict[str, StageCounts]:
    """Merge per-bundle parts into one StageCounts per stage."""
    merged: dict[str, StageCounts] = {}
    for part in parts:
        if part.stage not in merged:
            merged[part.stage] = StageCounts(part.stage)
        merged[part.stage].merge(part)
    return merged


def ordered_stages(stages: dict[str, StageCounts], chain: Sequence[str] = ()) -> list[StageCounts]:
    """The chain's stages in chain order, then stages off the chain (e.g. `pii_rejected`) by name."""
    rank = {name: i for i, name in enumerate(chain)}
    return sorted(stages.values(), key=lambda s: (rank.get(s.stage, len(rank)), s.stage))


def check_accounting(stages: dict[str, StageCounts], chain: Sequence[str]) -> dict[str, int]:
    """Verify every stage's in = kept + dropped (+ dead) and that stage k's input is stage k-1's kept.

    Returns the identity's terms; raises AccountingError naming the first mismatch.
    """
    present = [stages.get(name, StageCounts(name)) for name in chain]
    for counts in present:
        out = counts.kept + counts.total_dropped + counts.total_dead
        if counts.docs_in != out:
            raise AccountingError(
                f"stage {counts.stage}: {counts.docs_in} in != {counts.kept} kept + "
                f"{counts.total_dropped} dropped + {counts.total_dead} dead-lettered"
            )
    for before, after in itertools.pairwise(present):
        if before.kept != after.docs_in:
            raise AccountingError(
                f"stage {after.stage} received {after.docs_in}, but {before.stage} kept {before.kept}"
            )
    terms = {
        "records_read": present[0].docs_in,
        "kept": present[-1].kept,
        "dropped": sum(c.total_dropped for c in present),
        "dead_lettered": sum(c.total_dead for c in present),
    }
    if terms["records_read"] != terms["kept"] + terms["dropped"] + terms["dead_lettered"]:
        raise AccountingError(f"records read != kept + dropped + dead-lettered: {terms}")
    return terms


def render_table(stages: list[StageCounts]) -> str:
    """The printed per-stage table: in, kept, dropped with reasons, MB, seconds."""
    header = f"{'stage':<14}{'docs in':>10}{'kept':>10}{'dropped':>10}{'dead':>7}{'MB in':>10}{'MB kept':>10}{'sec':>8}"
    lines = [header, "-" * len(header)]
    for c in stages:
        lines.append(
            f"{c.stage:<14}{c.docs_in:>10}{c.kept:>10}{c.total_dropped:>10}{c.total_dead:>7}"
            f"{c.bytes_in / 1e6:>10.2f}{c.bytes_kept / 1e6:>10.2f}{c.seconds:>8.1f}"
        )
        for reason, n in sorted({**c.dropped, **{f"dead:{k}": v for k, v in c.dead_lettered.items()}}.items(),
                                key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{'':<16}{reason:<50}{n:>8}")
    return "\n".join(lines)


def stats_document(stages: dict[str, StageCounts], chain: Sequence[str], run: dict[str, Any]) -> dict[str, Any]:
    """The stats.json content: run metadata, the chain, the identity's terms and every stage's counts."""
    return {
        "run": run,
        "chain": list(chain),
        "accounting": check_accounting(stages, chain),
        "stages": [c.to_dict() for c in ordered_stages(stages, chain)],
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"
