"""Property tests of the crawl readers: any bytes as a WARC or WET file, any HTTP body, encoding and
charset is read without raising, every record is counted once, and every string out is UTF-8."""

from __future__ import annotations

import codecs
import gzip
import io
import tempfile
import zlib
from pathlib import Path

import brotli
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gemmaflow.pipeline.config import CrawlConfig, ReadConfig
from gemmaflow.pipeline.crawl.charset import decode_html
from gemmaflow.pipeline.crawl.documents import Dropped, Page, Skipped, warc_events, wet_events
from gemmaflow.pipeline.crawl.http import BodyDecodeError, dechunk, decode_body
from gemmaflow.pipeline.crawl.urls import UrlFilter
from gemmaflow.pipeline.records import DeadLetter
from gemmaflow.pipeline.stages.read import FileRange, _ReadFileDoFn

from ..strategies import any_text, assert_utf8, read_with
from .warcdata import http, page, per_record_gzip, record, response, whole_gzip

MAX_BYTES = 1 << 16
CHARSET_LABELS = (
    None, "utf-8", "UTF8", "iso-8859-1", "latin1", "us-ascii", "windows-1251", "koi8-r", "shift_jis", "euc-jp",
    "gb2312", "big5", "utf-16", "utf-16be", "x-user-defined", "iso-2022-kr", "replacement", "utf-7", "base64",
    "rot13", "zlib", "bogus", "", '"utf-8"', "utf-8; x=y", "\u00e9", "\x00",
)  # fmt: skip
charset_labels = st.one_of(st.sampled_from(CHARSET_LABELS), st.text(max_size=12))
coding_lists = st.lists(
    st.sampled_from(["gzip", "x-gzip", "deflate", "br", "identity", "compress", "GZIP"]), max_size=3
)
transfer_encodings = st.sampled_from([None, "", "chunked", "gzip, chunked", "Chunked", "identity"])


def chunked(data: bytes, sizes: list[int]) -> bytes:
    """`data` in chunks of the given sizes (the last takes the rest), then the zero-size chunk."""
    parts, start = [], 0
    for size in [*sizes, len(data)]:
        piece = data[start : start + size]
        start += len(piece)
        if piece:
            parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    return b"".join(parts) + b"0\r\n\r\n"


def encode(data: bytes, coding: str) -> bytes:
    if coding in ("gzip", "x-gzip", "GZIP"):
        return gzip.compress(data, mtime=0)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return brotli.compress(data)
    return data


@given(data=st.binary(max_size=300), sizes=st.lists(st.integers(1, 50), max_size=6))
def test_dechunk_undoes_chunking(data, sizes):
    assert dechunk(chunked(data, sizes)) == data


@given(
    body=st.binary(max_size=300),
    transfer=transfer_encodings,
    codings=coding_lists,
    encoded=st.booleans(),
    cut=st.none() | st.floats(0, 1),
    allow_truncated=st.booleans(),
)
def test_any_body_decodes_or_is_a_body_decode_error(body, transfer, codings, encoded, cut, allow_truncated):
    if encoded:  # really encoded as the headers say, so some decode; else the headers lie about random bytes
        for coding in codings:
            body = encode(body, coding)
        if transfer and "chunked" in transfer.lower():
            body = chunked(body, [7])
    if cut is not None:
        body = body[: int(len(body) * cut)]
    try:
        decoded = decode_body(body, transfer, ", ".join(codings), MAX_BYTES, allow_truncated)
    except BodyDecodeError as exc:
        assert exc.reason in (
            "bad_chunked_encoding", "bad_content_encoding", "unsupported_content_encoding", "page_too_large"
        )  # fmt: skip
    else:
        assert len(decoded) <= MAX_BYTES


@given(body=st.binary(max_size=300), label=charset_labels)
@example(body=codecs.BOM_UTF16_LE + b"\x00\xd8", label=None)  # a lone surrogate in UTF-16
@example(body=b"<p>x</p>", label="utf\x008")  # codecs.lookup raised ValueError for a NUL in the label
def test_any_page_bytes_decode_to_utf8_text(body, label):
    page_text = decode_html(body, label)
    page_text.text.encode("utf-8")
    codecs.lookup(page_text.charset)
    assert page_text.replaced >= 0


@given(text=st.text(max_size=100), codec=st.sampled_from(["utf-8", "windows-1252", "shift_jis", "koi8-r"]))
def test_a_page_in_its_declared_charset_decodes_to_its_text(text, codec):
    try:
        body = text.encode(codec)
    except UnicodeEncodeError:
        body = text.encode("utf-8")
        codec = "utf-8"
    assume(not body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)))  # a BOM outranks a label
    assert decode_html(body, codec).text == text


# -- WARC and WET files ----------------------------------------------------------------------------

STATUSES = st.sampled_from([200, 200, 200, 204, 301, 404, 500])
HTML_TYPES = st.sampled_from(["text/html", "application/xhtml+xml", "text/plain", "image/png", None])


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """One response record: a page (or random bytes) in a random charset, encoding and status."""
    body = draw(st.one_of(any_text.map(lambda t: page("T", t)), st.text(max_size=60)))
    label = draw(charset_labels.filter(lambda label: label is None or max(label, default="a") <= "\xff"))  # latin-1
    raw = body.encode(draw(st.sampled_from(["utf-8", "cp1252", "utf-16", "shift_jis"])), errors="ignore")
    raw = draw(st.one_of(st.just(raw), st.binary(max_size=100)))
    codings = draw(coding_lists)
    for coding in codings:
        raw = encode(raw, coding)
    headers = {"Content-Encoding": ", ".join(codings)} if codings else {}
    if draw(st.booleans()):
        raw, headers["Transfer-Encoding"] = chunked(raw, [draw(st.integers(1, 40))]), "chunked"
    mime = draw(HTML_TYPES)
    content_type = None if mime is None else mime + (f"; charset={label}" if label is not None else "")
    extra = {"WARC-Truncated": "length"} if draw(st.booleans()) else None
    return response(raw, status=draw(STATUSES), content_type=content_type, headers=headers, extra=extra)


other_records = st.sampled_from(
    [
        record("warcinfo", b"software: test\r\n", url=""),
        record("request", b"GET / HTTP/1.1\r\n\r\n", content_type="application/http; msgtype=request"),
        record("metadata", b"fetchTimeMs: 12\r\n"),
        record("response", b"not an HTTP response at all"),
        record("revisit", http(b"", status=304)),
    ]
)
conversions = any_text.map(
    lambda text: record("conversion", text.encode("utf-8", errors="replace"), content_type="text/plain")
)


def damaged(data: bytes, damage: str, where: float, garbage: bytes) -> bytes:
    """`data` cut, with garbage spliced in, or with a Content-Length that lies."""
    at = int(len(data) * where)
    if damage == "cut":
        return data[:at]
    if damage == "garbage":
        return data[:at] + garbage + data[at:]
    if damage == "length":
        return data.replace(b"Content-Length: ", b"Content-Length: 1", 1)
    if damage == "short_length":
        return data.replace(b"Content-Length: 1", b"Content-Length: ", 1)
    return data


@st.composite
def crawl_files(draw: st.DrawFn, records: st.SearchStrategy[bytes]) -> bytes:
    """Random bytes, or records in one of fastwarc's layouts, then maybe damaged."""
    items = draw(st.lists(st.one_of(records, other_records), min_size=1, max_size=4))
    layout = draw(st.sampled_from([b"".join, per_record_gzip, whole_gzip]))
    data = draw(st.binary(max_size=200)) if draw(st.integers(0, 4)) == 0 else layout(items)
    damage = draw(st.sampled_from(["none", "none", "cut", "garbage", "length", "short_length"]))
    return damaged(data, damage, draw(st.floats(0, 1)), draw(st.binary(min_size=1, max_size=30)))


def assert_events(events: list) -> None:
    assert all(isinstance(event, (Skipped, Page, Dropped, DeadLetter)) for event in events)
    framing = [i for i, event in enumerate(events) if isinstance(event, DeadLetter) and event.raw == ""]
    assert framing in ([], [len(events) - 1])  # a framing problem ends the file's events
    assert_utf8(events)


@settings(max_examples=80)
@given(crawl_files(responses()))
def test_any_warc_file_is_read_without_raising(data):
    events = list(warc_events(io.BytesIO(data), "c.warc.gz", CrawlConfig(), UrlFilter(), "fp"))
    assert_events(events)


@settings(max_examples=60)
@given(crawl_files(conversions))
def test_any_wet_file_is_read_without_raising(data):
    events = list(wet_events(io.BytesIO(data), "c.warc.wet.gz", UrlFilter(), "fp", MAX_BYTES))
    assert_events(events)


@given(st.lists(any_text, min_size=1, max_size=4))
def test_wet_conversion_records_keep_their_text(texts):
    data = b"".join(
        record("conversion", t.encode("utf-8", errors="surrogatepass"), content_type="text/plain") for t in texts
    )
    events = list(wet_events(io.BytesIO(data), "c.wet", UrlFilter(), "fp", MAX_BYTES))
    assert len(events) == len(texts)
    for text, event in zip(texts, events, strict=True):
        decoded = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
        if decoded.strip():
            assert isinstance(event, Page) and event.doc["text"] == decoded
        else:
            assert event == Skipped("empty_body")
    assert_utf8(events)


@settings(max_examples=30)
@given(data=crawl_files(st.one_of(responses(), conversions)), suffix=st.sampled_from([".warc.gz", ".warc.wet.gz"]))
def test_the_read_stage_counts_every_crawl_record_once(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"crawl{suffix}"
        path.write_bytes(data)
        out = read_with(_ReadFileDoFn(ReadConfig(), CrawlConfig(), "fp"), FileRange(str(path)))
    out.assert_accounted()
    extra = out.counts.extra
    skipped = sum(n for key, n in extra.items() if key.startswith("crawl.skipped."))
    assert extra.get("crawl.records", 0) == out.counts.docs_in + skipped
