import gzip
import zlib

import brotli
import pytest

from gemmaflow.pipeline.crawl.http import BodyDecodeError, dechunk, decode_body

HTML = b"<html><body><p>" + b"caf\xc3\xa9 " * 400 + b"</p></body></html>"


def chunked(data: bytes, size: int = 100) -> bytes:
    parts = [b"%x;ext=1\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\nTrailer: x\r\n\r\n"


@pytest.mark.parametrize(
    ("encoded", "coding"),
    [
        (gzip.compress(HTML), "gzip"),
        (gzip.compress(HTML), "x-gzip"),
        (zlib.compress(HTML), "deflate"),
        (zlib.compress(HTML)[2:-4], "deflate"),  # raw deflate, as some servers send it
        (brotli.compress(HTML), "br"),
        (HTML, "identity"),
        (HTML, None),
    ],
)
def test_content_encodings_decode(encoded, coding):
    assert decode_body(encoded, None, coding, 10**6) == HTML


def test_chunked_then_gzip_and_stacked_codings():
    assert decode_body(chunked(gzip.compress(HTML)), "chunked", "gzip", 10**6) == HTML
    stacked = brotli.compress(gzip.compress(HTML))  # "gzip, br": gzip applied first
    assert decode_body(stacked, None, "gzip, br", 10**6) == HTML


def test_dechunk_rejects_bad_framing_unless_truncated_allowed():
    with pytest.raises(BodyDecodeError) as bad:
        dechunk(b"zz\r\nabc\r\n0\r\n\r\n")
    assert bad.value.reason == "bad_chunked_encoding"
    cut = chunked(HTML)[:250]
    with pytest.raises(BodyDecodeError):
        dechunk(cut)
    assert HTML.startswith(dechunk(cut, allow_truncated=True))


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
def test_corrupt_or_cut_streams_are_errors_with_a_reason(coding):
    encoded = {"gzip": gzip.compress, "br": brotli.compress, "deflate": zlib.compress}[coding](HTML)
    with pytest.raises(BodyDecodeError) as cut:
        decode_body(encoded[: len(encoded) // 2], None, coding, 10**6)
    assert cut.value.reason == "bad_content_encoding"
    with pytest.raises(BodyDecodeError) as garbage:
        decode_body(b"\x00not compressed at all" * 5, None, coding, 10**6)
    assert garbage.value.reason == "bad_content_encoding"


def test_cut_stream_decodes_its_prefix_when_the_record_is_truncated():
    encoded = gzip.compress(HTML)
    assert HTML.startswith(decode_body(encoded[: len(encoded) // 2], None, "gzip", 10**6, allow_truncated=True))


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", None])
def test_decoded_size_is_capped_without_inflating_the_bomb(coding):
    bomb_plain = b"a" * 50_000_000
    encoded = {"gzip": gzip.compress, "br": brotli.compress, "deflate": zlib.compress, None: bytes}[coding](bomb_plain)
    with pytest.raises(BodyDecodeError) as big:
        decode_body(encoded, None, coding, 1_000_000)
    assert big.value.reason == "page_too_large"


def test_unknown_coding_is_named():
    with pytest.raises(BodyDecodeError) as unknown:
        decode_body(HTML, None, "compress", 10**6)
    assert unknown.value.reason == "unsupported_content_encoding"
