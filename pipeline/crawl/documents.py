"""Crawl records to documents: which records become pages, and what each page becomes.

`warc_events` and `wet_events` turn one file's stream into events the read stage routes and
counts; they do no Beam work, so every rule here is unit-tested on bytes. The tests run cheapest
first: record type, HTTP status, MIME type and truncation (headers only), the URL lists, then the
payload is read (up to a cap), decoded, given a charset and extracted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from gemmaflow.pipeline.config import CrawlConfig
from gemmaflow.pipeline.crawl.charset import decode_html
from gemmaflow.pipeline.crawl.extract import extract_page, markup_depth
from gemmaflow.pipeline.crawl.http import BodyDecodeError, decode_body
from gemmaflow.pipeline.crawl.urls import UrlFilter
from gemmaflow.pipeline.crawl.warc import TRUNCATED_RECORD, FramingError, WarcRecord, iter_records
from gemmaflow.pipeline.records import PIPELINE_VERSION, DeadLetter

HEADER_PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class Skipped:
    """A record that is not a page (kept out of the documents, counted under `reason`)."""

    reason: str


@dataclass(frozen=True)
class Page:
    """A page that became a document; `notes` are tallies for the read stage (`charset.header`)."""

    doc: dict[str, Any]
    payload_bytes: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dropped:
    """A page that is a document but is rejected here (URL lists, size, extraction), with why."""

    doc: dict[str, Any]
    reason: str
    detail: str
    payload_bytes: int


Event = Skipped | Page | Dropped | DeadLetter


def document_id(record_id: str) -> str:
    """A document id from the WARC-Record-ID: the same record always gives the same id."""
    return "gf-" + hashlib.blake2b(record_id.encode("utf-8"), digest_size=10).hexdigest()


def mime_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def charset_param(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def status_reason(status: int) -> str:
    """`status_3xx` for a 301; 2xx other than 200 (204, 206) is `status_2xx`."""
    return f"status_{status // 100}xx"


def mime_reason(mime: str) -> str:
    """`mime_image` for image/png; `mime_missing` when the response names no type."""
    family = mime.split("/", 1)[0] if "/" in mime else ""
    return f"mime_{family or 'missing'}"


class _Builder:
    """Makes the document dicts of one file (the fields every crawl document shares)."""

    def __init__(self, path: str, fingerprint: str, source: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.source = source

    def doc(self, record: WarcRecord, text: str, meta: dict[str, Any]) -> dict[str, Any]:
        record_id = record.header("WARC-Record-ID") or ""
        meta = {"warc_record_id": record_id, "warc_date": record.header("WARC-Date") or "", **meta}
        return {
            "id": document_id(record_id) if record_id else document_id(f"{self.path}\x00{record.offset}"),
            "text": text,
            "url": record.header("WARC-Target-URI"),
            "source": self.source,
            "domain": None,
            "domain_method": None,
            "lang": None,
            "lang_score": None,
            "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True),
            "signals": {},
            "scores": {},
            "provenance": {
                "file": self.path,
                "position": record.offset,
                "pipeline_version": PIPELINE_VERSION,
                "config_fingerprint": self.fingerprint,
            },
        }

    def dead(self, record: WarcRecord | None, offset: int, reason: str, detail: str) -> DeadLetter:
        raw = "" if record is None else json.dumps(record.headers, ensure_ascii=False)[:HEADER_PREVIEW_CHARS]
        return DeadLetter(self.path, offset, reason, detail, raw)


def _records_of(stream: IO[bytes], record_type: str, builder: _Builder) -> Iterator[WarcRecord | Event]:
    """Records of `record_type`; every other record as a Skipped event, framing problems as dead letters."""
    for item in iter_records(stream):
        if isinstance(item, FramingError):
            yield builder.dead(None, item.offset, item.reason, item.detail)
        elif item.record_type != record_type:
            yield Skipped(item.record_type)
        else:
            yield item


def _url_drop(record: WarcRecord, url_filter: UrlFilter, builder: _Builder) -> Dropped | None:
    url = record.header("WARC-Target-URI") or ""
    verdict = url_filter.verdict(url) if url_filter.active else None
    return None if verdict is None else Dropped(builder.doc(record, "", {}), verdict, url, 0)


def _read_payload(record: WarcRecord, limit: int, builder: _Builder) -> bytes | Dropped | DeadLetter:
    """The whole payload, or why not: over `limit` (dropped) or cut short by the file's end (dead)."""
    payload = record.read_payload(limit + 1)
    if len(payload) > limit:
        detail = f"payload over {limit} bytes"
        return Dropped(builder.doc(record, "", {}), "page_too_large", detail, len(payload))
    missing_length = record.header("Content-Length") is None
    if missing_length or len(payload) < record.declared_length:
        detail = "no Content-Length" if missing_length else f"{len(payload)} of {record.declared_length} bytes"
        return builder.dead(record, record.offset, TRUNCATED_RECORD, f"file ends inside the record: {detail}")
    return payload


def warc_events(
    stream: IO[bytes], path: str, config: CrawlConfig, url_filter: UrlFilter, fingerprint: str
) -> Iterator[Event]:
    """One event per record of a WARC file (and one per framing problem)."""
    builder = _Builder(path, fingerprint, "warc")
    for record in _records_of(stream, "response", builder):
        if not isinstance(record, WarcRecord):
            yield record
            continue
        if record.header("Content-Length") is None:  # a cut file's last record
            yield builder.dead(
                record, record.offset, TRUNCATED_RECORD, "file ends inside the record: no Content-Length"
            )
            continue
        if record.http_status is None:
            yield builder.dead(
                record, record.offset, "bad_http_response", "response without a parsable HTTP status line"
            )
            continue
        if record.http_status != 200:
            yield Skipped(status_reason(record.http_status))
            continue
        content_type = record.http_headers.get("content-type")
        mime = mime_type(content_type)
        if mime not in config.html_mime_types:
            yield Skipped(mime_reason(mime))
            continue
        truncated = record.header("WARC-Truncated")
        if truncated and not config.keep_truncated:
            yield Skipped("truncated")
            continue
        yield _page_event(record, content_type, truncated, config, url_filter, builder)


def _page_event(
    record: WarcRecord,
    content_type: str | None,
    truncated: str | None,
    config: CrawlConfig,
    url_filter: UrlFilter,
    builder: _Builder,
) -> Event:
    dropped = _url_drop(record, url_filter, builder)
    if dropped is not None:
        return dropped
    payload = _read_payload(record, config.max_html_bytes, builder)
    if not isinstance(payload, bytes):
        return payload
    if not payload.strip():
        return Skipped("empty_body")
    try:
        body = decode_body(
            payload,
            record.http_headers.get("transfer-encoding"),
            record.http_headers.get("content-encoding"),
            config.max_html_bytes,
            allow_truncated=bool(truncated),
        )
    except BodyDecodeError as exc:
        if exc.reason == "page_too_large":
            return Dropped(builder.doc(record, "", {}), exc.reason, str(exc), len(payload))
        return builder.dead(record, record.offset, exc.reason, str(exc))
    if not body.strip():
        return Skipped("empty_body")
    tags = body.count(b"<")
    if tags > config.max_html_tags:
        detail = f"{tags} tags > max_html_tags {config.max_html_tags}"
        return Dropped(builder.doc(record, "", {}), "page_too_complex", detail, len(payload))
    decoded = decode_html(body, charset_param(content_type))
    depth = markup_depth(decoded.text)
    if depth > config.max_html_depth:
        detail = f"elements nested {depth} deep > max_html_depth {config.max_html_depth}"
        return Dropped(builder.doc(record, "", {}), "page_too_complex", detail, len(payload))
    try:
        page = extract_page(decoded.text, config.extractor, config.boilerplate_rules)
    except Exception as exc:  # a page the parser rejects is a dead letter, not a crashed worker
        return builder.dead(record, record.offset, "extract_failed", f"{type(exc).__name__}: {exc}")
    meta: dict[str, Any] = {
        "content_type": content_type or "",
        "charset": decoded.charset,
        "charset_source": decoded.source,
        "extractor": config.extractor,
        "title": page.title,
        "html_lang": page.lang,
    }
    if truncated:
        meta["warc_truncated"] = truncated
    doc = builder.doc(record, page.text, meta)
    if decoded.replaced:
        doc["signals"]["read.charset_replaced_chars"] = float(decoded.replaced)
    if page.seconds > config.max_extract_seconds:
        detail = f"{page.seconds:.1f} s > max_extract_seconds {config.max_extract_seconds}"
        return Dropped({**doc, "text": ""}, "extract_too_slow", detail, len(payload))
    if not page.text.strip():
        return Dropped(doc, "no_main_text", "the extractor found no main text", len(payload))
    notes = (f"charset.{decoded.source}",) + (("charset_errors",) if decoded.replaced else ())
    return Page(doc, len(payload), notes)


def wet_events(
    stream: IO[bytes], path: str, url_filter: UrlFilter, fingerprint: str, max_bytes: int
) -> Iterator[Event]:
    """One event per record of a WET file: each `conversion` record is a text document (over
    `max_bytes`, dropped as document_too_large)."""
    builder = _Builder(path, fingerprint, "wet")
    for record in _records_of(stream, "conversion", builder):
        if not isinstance(record, WarcRecord):
            yield record
            continue
        dropped = _url_drop(record, url_filter, builder)
        if dropped is not None:
            yield dropped
            continue
        payload = _read_payload(record, max_bytes, builder)
        if isinstance(payload, Dropped):
            yield Dropped(payload.doc, "document_too_large", payload.detail, payload.payload_bytes)
            continue
        if isinstance(payload, DeadLetter):
            yield payload
            continue
        text = payload.decode("utf-8", errors="replace")
        if not text.strip():
            yield Skipped("empty_body")
            continue
        meta = {"refers_to": record.header("WARC-Refers-To") or "", "content_type": record.header("Content-Type") or ""}
        language = record.header("WARC-Identified-Content-Language")
        if language:
            meta["identified_language"] = language
        doc = builder.doc(record, text, meta)
        replaced = text.count("\ufffd")
        if replaced:
            doc["signals"]["read.invalid_utf8"] = 1.0
        yield Page(doc, len(payload))
