"""Record selection, decoding and provenance: WARC and WET bytes made here, read by the plain functions."""

import gzip
import io
import json
import zlib

import brotli
import pytest

from gemmaflow.pipeline.config import CrawlConfig
from gemmaflow.pipeline.crawl.documents import Dropped, Page, Skipped, document_id, warc_events, wet_events
from gemmaflow.pipeline.crawl.urls import UrlFilter
from gemmaflow.pipeline.records import DeadLetter

from .warcdata import http, page, per_record_gzip, record, response, whole_gzip

TEXT = "Herons stand in shallow water for hours and strike at passing fish with their long sharp bills."
HTML = page("Herons", TEXT, "Their nests are built high in trees, in colonies called heronries.")


def events(data: bytes, config: CrawlConfig | None = None, url_filter: UrlFilter | None = None) -> list:
    return list(
        warc_events(io.BytesIO(data), "crawl.warc.gz", config or CrawlConfig(), url_filter or UrlFilter(), "fp")
    )


def only_page(data: bytes, **kwargs) -> Page:
    [event] = [e for e in events(data, **kwargs) if not isinstance(e, Skipped)]
    assert isinstance(event, Page), event
    return event


def crawl_of_every_kind() -> list[bytes]:
    return [
        record("warcinfo", b"software: test\r\n", url=""),
        record(
            "request", b"GET / HTTP/1.1\r\nHost: site.example\r\n\r\n", content_type="application/http; msgtype=request"
        ),
        response(HTML.encode(), url="https://site.example/heron"),
        record("metadata", b"fetchTimeMs: 12\r\n"),
        response(b"", url="https://site.example/old", status=301, headers={"Location": "/new"}),
        response(b"<html>gone</html>", url="https://site.example/missing", status=404),
        response(b"<html>oops</html>", url="https://site.example/err", status=503),
        response(b"\x89PNG\r\n\x1a\n" + bytes(200), url="https://site.example/a.png", content_type="image/png"),
        response(b"%PDF-1.4 ...", url="https://site.example/a.pdf", content_type="application/pdf"),
        response(b"User-agent: *\nDisallow:\n", url="https://site.example/robots.txt", content_type="text/plain"),
        response(b"", url="https://site.example/empty"),
        response(HTML.encode()[:300], url="https://site.example/cut", extra={"WARC-Truncated": "length"}),
        record("revisit", http(b"", status=304), extra={"WARC-Profile": "identical-payload-digest"}),
        response(b"<html>no type</html>", url="https://site.example/untyped", content_type=None),
    ]


@pytest.mark.parametrize("layout", [b"".join, per_record_gzip, whole_gzip])
def test_every_record_kind_is_counted_and_only_the_page_becomes_a_document(layout):
    result = events(layout(crawl_of_every_kind()))
    assert [e.reason for e in result if isinstance(e, Skipped)] == [
        "warcinfo", "request", "metadata", "status_3xx", "status_4xx", "status_5xx", "mime_image",
        "mime_application", "mime_text", "empty_body", "truncated", "revisit", "mime_missing",
    ]  # fmt: skip
    pages = [e for e in result if isinstance(e, Page)]
    assert len(result) == 14 and len(pages) == 1
    assert TEXT in pages[0].doc["text"] and pages[0].doc["url"] == "https://site.example/heron"


def test_provenance_and_deterministic_id():
    data = per_record_gzip([record("warcinfo", b"x: y\r\n"), response(HTML.encode(), date="2024-05-06T07:08:09Z")])
    first, second = only_page(data), only_page(data)
    doc = first.doc
    meta = json.loads(doc["meta"])
    assert doc["id"] == second.doc["id"] == document_id(meta["warc_record_id"])
    assert meta["warc_record_id"].startswith("<urn:uuid:")
    assert meta["warc_date"] == "2024-05-06T07:08:09Z"
    assert meta["content_type"] == "text/html; charset=utf-8"
    assert (meta["charset"], meta["charset_source"], meta["extractor"]) == ("utf-8", "header", "resiliparse")
    assert (meta["title"], meta["html_lang"]) == ("Herons", "en")
    assert doc["source"] == "warc" and doc["provenance"]["position"] > 0


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (gzip.compress(HTML.encode()), {"Content-Encoding": "gzip"}),
        (zlib.compress(HTML.encode()), {"Content-Encoding": "deflate"}),
        (brotli.compress(HTML.encode()), {"Content-Encoding": "br"}),
        (b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (HTML.encode()[:100], HTML.encode()[100:])) + b"0\r\n\r\n",
         {"Transfer-Encoding": "chunked"}),
    ],
)  # fmt: skip
def test_http_encodings(body, headers):
    assert TEXT in only_page(response(body, headers=headers)).doc["text"]


def test_legacy_charsets_come_out_as_unicode():
    russian = "Цапли стоят в мелкой воде часами и ловят проходящую рыбу своими длинными острыми клювами."
    html = page("Цапли", russian, lang="ru").encode("koi8-r")
    doc = only_page(response(html, content_type="text/html; charset=koi8-r")).doc
    assert russian in doc["text"] and json.loads(doc["meta"])["charset"] == "koi8-r"
    japanese = "サギは浅い水の中に何時間も立ち、通りかかる魚を長く鋭いくちばしで捕らえます。"
    html = (
        page("サギ", japanese, lang="ja", furniture=False)
        .replace("<head>", '<head><meta charset="shift_jis">')
        .encode("shift_jis")
    )
    doc = only_page(response(html, content_type="text/html")).doc
    assert japanese in doc["text"] and json.loads(doc["meta"])["charset_source"] == "meta"


def test_a_body_that_fails_to_decode_is_a_dead_letter_with_file_and_offset():
    data = per_record_gzip([response(HTML.encode()), response(b"not gzip at all", headers={"Content-Encoding": "gzip"},
                                                              url="https://site.example/bad")])  # fmt: skip
    [dead] = [e for e in events(data) if isinstance(e, DeadLetter)]
    assert (dead.file, dead.reason) == ("crawl.warc.gz", "bad_content_encoding")
    assert dead.position == len(gzip.compress(response(HTML.encode()), mtime=0))
    assert "https://site.example/bad" in dead.raw


def test_truncated_responses_kept_by_config():
    cut = response(HTML.encode()[: len(HTML) * 2 // 3], extra={"WARC-Truncated": "length"})
    assert [type(e) for e in events(cut)] == [Skipped]
    doc = only_page(cut, config=CrawlConfig(keep_truncated=True)).doc
    assert TEXT in doc["text"] and json.loads(doc["meta"])["warc_truncated"] == "length"


def test_size_and_complexity_caps_drop_with_a_reason():
    big = page("Big", TEXT * 200)
    [too_large] = events(response(big.encode()), config=CrawlConfig(max_html_bytes=5000))
    assert isinstance(too_large, Dropped) and too_large.reason == "page_too_large"
    [bomb] = events(response(gzip.compress(b"<p>" + b"a" * 10_000_000), headers={"Content-Encoding": "gzip"}),
                    config=CrawlConfig(max_html_bytes=100_000))  # fmt: skip
    assert isinstance(bomb, Dropped) and bomb.reason == "page_too_large"
    [complex_page] = events(response(("<div>" * 3000).encode()), config=CrawlConfig(max_html_tags=1000))
    assert isinstance(complex_page, Dropped) and complex_page.reason == "page_too_complex"
    nested = "<html><body>" + "<div>" * 60_000 + "text" + "</div>" * 60_000 + "</body></html>"  # 196 s to extract
    [deep] = events(response(nested.encode()))
    assert isinstance(deep, Dropped) and deep.reason == "page_too_complex" and "nested 60000 deep" in deep.detail
    [empty] = events(response(b"<html><body><script>var x = 1;</script></body></html>"))
    assert isinstance(empty, Dropped) and empty.reason == "no_main_text"


def test_url_lists_drop_before_the_payload_is_read():
    lists = UrlFilter.from_lists(block_domains=["site.example"])
    [dropped] = events(response(b"\x00 not even html", headers={"Content-Encoding": "gzip"}), url_filter=lists)
    assert isinstance(dropped, Dropped) and dropped.reason == "blocked_domain"


def test_a_file_cut_inside_a_record_ends_in_a_dead_letter():
    whole = b"".join(
        [record("warcinfo", b"x: y\r\n"), response(HTML.encode()), response(HTML.encode(), url="https://b.example/")]
    )
    cut = whole[: len(whole) - 400]
    result = events(cut)
    assert isinstance(result[1], Page)
    assert isinstance(result[-1], DeadLetter) and result[-1].reason == "truncated_record"
    gz = per_record_gzip([record("warcinfo", b"x: y\r\n"), response(HTML.encode()), response(HTML.encode())])
    assert isinstance(events(gz[: len(gz) - 100])[-1], DeadLetter)


@pytest.mark.parametrize("data", [b"this is a JSON file, not a WARC\n" * 50, gzip.compress(b'{"text": "x"}\n' * 50)])
def test_a_file_that_is_not_a_warc_is_one_dead_letter(data):
    [dead] = events(data)
    assert isinstance(dead, DeadLetter) and dead.reason == "not_a_warc_file"


def test_garbage_between_records_is_a_dead_letter_after_the_good_records():
    good = response(HTML.encode())
    result = events(good + b"GARBAGE LINE\r\n" * 5 + good)
    assert isinstance(result[0], Page)
    assert isinstance(result[-1], DeadLetter) and result[-1].reason == "invalid_warc_header"


def test_empty_file_gives_nothing():
    assert events(b"") == []


def test_wet_conversion_records_are_text_documents():
    text = "Herons stand in shallow water.\nThey strike at fish.\n"
    data = per_record_gzip([
        record("warcinfo", b"x: y\r\n", url=""),
        record("conversion", text.encode(), url="https://site.example/heron", content_type="text/plain",
               extra={"WARC-Refers-To": "<urn:uuid:1>", "WARC-Identified-Content-Language": "eng"}),
        record("conversion", b"", url="https://site.example/empty", content_type="text/plain"),
    ])  # fmt: skip
    result = list(wet_events(io.BytesIO(data), "x.warc.wet.gz", UrlFilter(), "fp", 10**6))
    assert [type(e) for e in result] == [Skipped, Page, Skipped]
    doc = result[1].doc
    assert doc["text"] == text and doc["source"] == "wet"
    assert json.loads(doc["meta"])["refers_to"] == "<urn:uuid:1>"
    too_big = list(wet_events(io.BytesIO(data), "x.warc.wet.gz", UrlFilter(), "fp", 10))
    assert isinstance(too_big[1], Dropped) and too_big[1].reason == "document_too_large"
