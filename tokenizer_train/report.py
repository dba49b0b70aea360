"""The validation report: how the trained model encodes held-out documents, per domain and language.

Everything is measured on documents the sampler set aside before training. Round trips must be
exact (`decode(encode(x)) == x`, code indentation, emoji and non-Latin scripts included); with byte
fallback the unknown-token rate must be 0. Bytes per token and tokens per whitespace word
(fertility) compare vocabularies; the share of learned pieces never used on the held-out set shows
how much of the vocabulary the held-out text needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gemmaflow.tokenizer_train.sample import HeldOutDocument

MAX_FAILURES_LISTED = 5
_NORMAL, _BYTE = 1, 6  # sentencepiece_model.proto ModelProto.SentencePiece.Type


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class _Tally:
    """Sums over a group of held-out documents."""

    documents: int = 0
    bytes: int = 0
    words: int = 0
    tokens: int = 0
    unk: int = 0
    byte_tokens: int = 0
    exact: int = 0

    def add(self, other: _Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def row(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "bytes": self.bytes,
            "tokens": self.tokens,
            "round_trip_exact": _ratio(self.exact, self.documents),
            "unk_rate": _ratio(self.unk, self.tokens),
            "byte_fallback_rate": _ratio(self.byte_tokens, self.tokens),
            "bytes_per_token": _ratio(self.bytes, self.tokens),
            "tokens_per_word": _ratio(self.tokens, self.words),
        }


def validation_report(model: bytes, heldout: Sequence[HeldOutDocument], longest: int, threads: int) -> dict[str, Any]:
    """Encode every held-out document once and summarise; see the module docstring for the measures."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    texts = [d.text for d in heldout]
    encoded = sp.encode(texts, num_threads=threads) if texts else []
    decoded = sp.decode(encoded, num_threads=threads) if texts else []
    pieces, types = _pieces_and_types(model)
    is_byte = types == _BYTE
    learned = types == _NORMAL
    used = np.zeros(len(pieces), dtype=bool)
    unk_id = sp.unk_id()
    tallies: dict[tuple[str, str], _Tally] = {}
    total = _Tally()
    failures = []
    for doc, ids, back in zip(heldout, encoded, decoded, strict=True):
        ids_array = np.asarray(ids, dtype=np.int64)
        used[ids_array] = True
        exact = back == doc.text
        if not exact and len(failures) < MAX_FAILURES_LISTED:
            at = _first_difference(doc.text, back)
            failures.append(
                {"domain": doc.domain, "lang": doc.lang, "at_char": at, "expected": doc.text[at : at + 40],
                 "decoded": back[at : at + 40]}
            )  # fmt: skip
        one = _Tally(
            documents=1, bytes=len(doc.text.encode("utf-8")), words=len(doc.text.split()), tokens=len(ids),
            unk=int((ids_array == unk_id).sum()), byte_tokens=int(is_byte[ids_array].sum()), exact=int(exact),
        )  # fmt: skip
        for key in ((doc.domain, doc.lang), (doc.domain, "*")):
            tallies.setdefault(key, _Tally()).add(one)
        total.add(one)
    longest_pieces = sorted((pieces[i] for i in np.flatnonzero(learned)), key=lambda p: (-len(p), p))[:longest]
    return {
        "heldout_documents": len(heldout),
        "round_trip": {
            "documents": total.documents,
            "exact": total.exact,
            "rate": _ratio(total.exact, total.documents),
            "failures": failures,
        },
        "overall": total.row(),
        "domains": {d: t.row() for (d, lang), t in sorted(tallies.items()) if lang == "*"},
        "groups": {f"{d}/{lang}": t.row() for (d, lang), t in sorted(tallies.items()) if lang != "*"},
        "vocabulary": {
            "size": len(pieces),
            "learned_pieces": int(learned.sum()),
            "learned_unused_on_heldout": int((learned & ~used).sum()),
            "unused_share": _ratio(int((learned & ~used).sum()), int(learned.sum())),
        },
        "longest_pieces": [p.replace("\u2581", " ") for p in longest_pieces],
    }


def _pieces_and_types(model: bytes) -> tuple[list[str], np.ndarray]:
    """Pieces and their SentencePiece types (NORMAL = learned, BYTE, CONTROL, USER_DEFINED, ...) by id."""
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto()
    proto.ParseFromString(model)
    return [p.piece for p in proto.pieces], np.array([p.type for p in proto.pieces], dtype=np.int8)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_report(report: dict[str, Any]) -> str:
    """The report as the table `gemmaflow tokenizer train` prints."""
    header = (
        f"{'group':<16}{'docs':>7}{'MB':>9}{'tokens':>11}{'round-trip':>12}{'unk':>8}{'bytes/tok':>11}{'tok/word':>10}"
    )
    lines = [header]
    rows = [("all", report["overall"])]
    for domain, row in report["domains"].items():
        rows.append((domain, row))
        rows.extend(
            (f"  {key.split('/', 1)[1]}", r) for key, r in report["groups"].items() if key.startswith(domain + "/")
        )
    for name, row in rows:
        lines.append(
            f"{name:<16}{row['documents']:>7}{row['bytes'] / 1e6:>9.2f}{row['tokens']:>11}"
            f"{_fmt(row['round_trip_exact'], '.2%'):>12}{_fmt(row['unk_rate'], '.4f'):>8}"
            f"{_fmt(row['bytes_per_token'], '.2f'):>11}{_fmt(row['tokens_per_word'], '.2f'):>10}"
        )
    vocab = report["vocabulary"]
    lines.append(
        f"vocabulary {vocab['size']:,}: {vocab['learned_pieces']:,} learned pieces, "
        f"{_fmt(vocab['unused_share'], '.1%')} unused on the held-out set"
    )
    lines.append("longest pieces: " + ", ".join(repr(p) for p in report["longest_pieces"][:10]))
    return "\n".join(lines)
