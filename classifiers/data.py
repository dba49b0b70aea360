"""Labeled JSONL (plain, .gz or .zst) in, examples with their text, label and split group out."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class DataError(ValueError):
    """The labeled data cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    group: str  # the split key


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".zst":
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(path.open("rb")), encoding="utf-8")
    return path.open(encoding="utf-8")


def join_fields(record: dict, fields: Sequence[str]) -> str | None:
    """The text a classifier reads: the named string fields joined by newlines; None if none is present."""
    parts = [record[f] for f in fields if isinstance(record.get(f), str) and record[f]]
    return "\n".join(parts) if parts else None


def _iter_records(path: Path) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            yield number, record


def read_examples(
    path: str | Path, text_fields: Sequence[str], label_field: str, split_field: str = ""
) -> list[Example]:
    """Every record as an Example; a record without text or label is an error naming its line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"labeled data not found: {path}")
    examples = []
    for number, record in _iter_records(path):
        text = join_fields(record, text_fields)
        if text is None:
            raise DataError(f"{path}:{number}: no text in field(s) {', '.join(text_fields)}")
        label = record.get(label_field)
        if label is None or isinstance(label, (dict, list)) or str(label).strip() == "" or " " in str(label):
            raise DataError(f"{path}:{number}: `{label_field}` must be a label without spaces, got {label!r}")
        label = str(label).lower() if isinstance(label, bool) else str(label)
        group = record.get(split_field) if split_field else None
        if group is None or group == "":
            group = hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=16).hexdigest()
        examples.append(Example(text, label, str(group)))
    if not examples:
        raise DataError(f"{path}: no records")
    return examples


def file_digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes: the training-data hash the model card records."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
