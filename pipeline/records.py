"""The curated record: parsing raw input into it, and its one Arrow schema (see docs/record-schema.md).

A document travels through the pipeline as a plain dict with the keys of `CURATED_SCHEMA`; plain
dicts pickle fast between Beam workers and map one-to-one onto Parquet rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from gemmaflow.core.domains import DOMAINS

PIPELINE_VERSION = "0.1.0"

PROVENANCE_TYPE = pa.struct(
    [
        ("file", pa.string()),  # the input file the record came from
        ("position", pa.int64()),  # 0-based line number (JSONL) or row number (Parquet)
        ("pipeline_version", pa.string()),
        ("config_fingerprint", pa.string()),
    ]
)

CURATED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("url", pa.string()),
        ("source", pa.string()),
        ("domain", pa.string()),  # web | code | math
        ("domain_method", pa.string()),  # record | extension | content | model
        ("lang", pa.string()),  # ISO 639 code from lid.176; null when not judged (code)
        ("lang_score", pa.float32()),
        ("meta", pa.string()),  # the input's `meta`, as JSON text
        ("signals", pa.map_(pa.string(), pa.float64())),  # stage.signal -> value
        ("scores", pa.map_(pa.string(), pa.float32())),  # classifier name -> score (pipeline/classify.py)
        # PII spans replaced per entity type (EMAIL_ADDRESS -> 2); null when the PII stage is off.
        # Counts only: a detected value is never stored anywhere.
        ("pii_replacements", pa.map_(pa.string(), pa.int32())),
        ("provenance", PROVENANCE_TYPE),
    ]
)

REJECTED_SCHEMA = CURATED_SCHEMA.append(pa.field("reject_stage", pa.string())).append(
    pa.field("reject_reason", pa.string())
).append(pa.field("reject_detail", pa.string()))

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("position", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),  # the first RAW_PREVIEW_CHARS characters of the bad record
    ]
)
RAW_PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not become a document, with where it was and why."""

    file: str
    position: int
    reason: str
    detail: str
    raw: str

    def to_row(self) -> dict[str, Any]:
        """The dead-letter sink's row: this dataclass's fields are DEAD_LETTER_SCHEMA's, in its order."""
        return {**dataclasses.asdict(self), "raw": self.raw[:RAW_PREVIEW_CHARS]}


def stable_id(file: str, position: int) -> str:
    """Id for a record that has none: the same file and position always give the same id."""
    return "gf-" + hashlib.blake2b(f"{file}\x00{position}".encode(), digest_size=10).hexdigest()


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(key)


def document_from_record(
    record: Any, file: str, position: int, config_fingerprint: str, text_field: str = "text"
) -> dict[str, Any] | DeadLetter:
    """Validate one decoded input record; return a document dict or a DeadLetter saying why not."""

    def dead(reason: str, detail: str) -> DeadLetter:
        return DeadLetter(file, position, reason, detail, json.dumps(record, ensure_ascii=False, default=str))

    if not isinstance(record, dict):
        return dead("not_an_object", f"record is a JSON {type(record).__name__}, expected an object")
    if text_field not in record or record[text_field] is None:
        return dead("missing_text", f"no `{text_field}` field")
    text = record[text_field]
    if not isinstance(text, str):
        return dead("text_not_string", f"`{text_field}` is a {type(text).__name__}")
    raw_id = record.get("id")
    if raw_id is None or raw_id == "":
        doc_id = stable_id(file, position)
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        doc_id = str(raw_id)
    else:
        return dead("bad_id", f"`id` is a {type(raw_id).__name__}")
    try:
        url = _optional_str(record, "url")
        source = _optional_str(record, "source")
        domain = _optional_str(record, "domain")
    except TypeError as exc:
        return dead("field_not_string", f"`{exc.args[0]}` is not a string")
    if domain is not None and domain not in DOMAINS:
        return dead("bad_domain", f"`domain` must be one of {sorted(DOMAINS)}")
    meta = record.get("meta")
    return {
        "id": doc_id,
        "text": text,
        "url": url,
        "source": source,
        "domain": domain,
        "domain_method": "record" if domain else None,
        "lang": None,
        "lang_score": None,
        "meta": None if meta is None else json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str),
        "signals": {},
        "scores": {},
        "provenance": {
            "file": file,
            "position": position,
            "pipeline_version": PIPELINE_VERSION,
            "config_fingerprint": config_fingerprint,
        },
    }


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _repaired(value: Any) -> tuple[Any, int]:
    return _SURROGATE.subn("\ufffd", value) if isinstance(value, str) else (value, 0)


def without_surrogates(value: Any) -> tuple[Any, int]:
    """`value` with every lone UTF-16 surrogate in its strings (keys included) replaced by U+FFFD,
    and how many were replaced. JSON may escape them ("\\ud800"); UTF-8 cannot hold them, and one
    such string stopped a whole run in Beam's coder.

    Lists and dicts are repaired in place, walked with a stack rather than recursion: json.loads
    accepts records nested about 1000 deep, and a recursive walk overflowed at 500.
    """
    value, total = _repaired(value)
    stack = [value]
    while stack:
        container = stack.pop()
        if isinstance(container, dict):
            entries = list(container.items())
            container.clear()
        elif isinstance(container, list):
            entries = list(enumerate(container))
        else:
            continue
        for key, item in entries:
            if isinstance(container, dict):
                key, key_count = _repaired(key)
                total += key_count
            repaired, count = _repaired(item)
            container[key] = repaired
            total += count
            stack.append(repaired)
    return value, total


def loads_utf8(text: str, strict: bool = True) -> tuple[Any, int]:
    """json.loads, then lone surrogates repaired (only looked for when the text escapes one). A
    leading byte-order mark is ignored, as RFC 8259 allows: Windows editors start files with one.

    Raises ValueError (json.JSONDecodeError is one) for text that is not JSON Python can hold: not
    JSON at all, nested deeper than the parser's recursion limit, or an integer of over 4300 digits.
    """
    try:
        record = json.loads(text.removeprefix("\ufeff"), strict=strict)
    except RecursionError:
        raise ValueError("JSON nested deeper than the parser's recursion limit") from None
    if _SURROGATE_ESCAPE.search(text) is None:
        return record, 0
    return without_surrogates(record)


def parse_json_line(
    line: bytes, file: str, position: int, config_fingerprint: str, text_field: str = "text"
) -> dict[str, Any] | DeadLetter:
    """Decode one JSONL line. Invalid UTF-8 is replaced (and counted later), never fatal."""
    try:
        decoded = line.decode("utf-8")
        invalid_utf8 = False
    except UnicodeDecodeError:
        decoded = line.decode("utf-8", errors="replace")
        invalid_utf8 = True
    try:
        # strict=False accepts raw control characters (NUL included) inside strings; normalise strips them.
        record, surrogates = loads_utf8(decoded, strict=False)
    except ValueError as exc:
        return DeadLetter(file, position, "invalid_json", str(exc), decoded)
    doc = document_from_record(record, file, position, config_fingerprint, text_field)
    if invalid_utf8 and isinstance(doc, dict):
        doc["signals"]["read.invalid_utf8"] = 1.0
    if surrogates and isinstance(doc, dict):
        doc["signals"]["read.surrogates_replaced"] = float(surrogates)
    return doc


def rejected_row(doc: dict[str, Any], stage: str, reason: str, detail: str = "") -> dict[str, Any]:
    """The rejected-sink row for a document a stage dropped."""
    return {**doc, "reject_stage": stage, "reject_reason": reason, "reject_detail": detail}
