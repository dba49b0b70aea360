"""datatrove's side of benchmarks/strict_vs_datatrove.py: each reference filter's decision per document.

Runs in datatrove's own virtual environment (``python benchmarks/datatrove_env.py`` prints its
interpreter) and imports nothing from gemmaflow: stdlib, datatrove and zstandard only. For every
document of ``--input`` (``{id, text, ...}`` JSONL, plain or .zst) it applies each filter alone, with
datatrove's defaults (the published thresholds), and writes one JSON line::

    {"id": ..., "gopher_repetition": [keep, reason], "gopher_quality": [...], "c4": [keep, reason,
     edited_text_digest], "fineweb": [...], "mc4_paragraph": [...]}

``reason`` is datatrove's own string (None when kept; "error: ..." when a filter raised).
C4QualityFilter edits the text of a kept document: its BLAKE2b digest is reported so the caller
can compare edits without shipping the text back. Offline: the English word tokenizer is spaCy's
blank pipeline, which needs no download.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path


def text_digest(text: str) -> str:
    """Short digest of an edited text; the gemmaflow side computes the same one."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def read_records(path: Path, limit: int | None) -> Iterator[dict]:
    """JSONL records of ``path`` (zstd-compressed when it ends in .zst), at most ``limit``."""
    with path.open("rb") as raw:
        if path.suffix == ".zst":
            import zstandard

            stream = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        else:
            stream = io.TextIOWrapper(raw, encoding="utf-8")
        for count, line in enumerate(stream):
            if limit is not None and count >= limit:
                return
            yield json.loads(line)


def filters() -> dict[str, object]:
    """The reference filters with their default (published) thresholds, by gemmaflow rule-set name."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.filters.c4_filters import C4ParagraphFilter

    return {
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(),
        "fineweb": FineWebQualityFilter(),
        "mc4_paragraph": C4ParagraphFilter(),
    }


def decide(step: object, text: str, doc_id: str) -> list:
    """[keep, reason, digest of the text the filter leaves] for one filter on a fresh document."""
    from datatrove.data import Document

    doc = Document(text=text, id=doc_id)
    try:
        result = step.filter(doc)  # type: ignore[attr-defined]
    except Exception as exc:  # a crash is a decision to report, not a reason to stop the run
        return [False, f"error: {type(exc).__name__}: {exc}"[:200], None]
    keep, reason = (result, None) if isinstance(result, bool) else result
    return [bool(keep), reason, text_digest(doc.text) if keep else None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True, help="JSONL decisions")
    args = parser.parse_args(argv)
    steps = filters()
    with args.output.open("w", encoding="utf-8") as out:
        for count, record in enumerate(read_records(args.input, args.limit), 1):
            row = {"id": record["id"]}
            for name, step in steps.items():
                row[name] = decide(step, record["text"], record["id"])
            out.write(json.dumps(row) + "\n")
            if count % 2000 == 0:
                print(f"datatrove: {count} docs", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
