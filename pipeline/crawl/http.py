"""HTTP payload decoding: chunked transfer encoding, then gzip / deflate / brotli content encodings.

Done here rather than by the WARC library: fastwarc's own decoding (`auto_decode`) stops iterating a
file silently when a chunked and gzip-encoded body fails to decode, losing every later record, and
a failure here must become a dead letter that names the record instead.
"""

from __future__ import annotations

import zlib


class BodyDecodeError(ValueError):
    """The payload could not be decoded; `reason` is the dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def dechunk(body: bytes, allow_truncated: bool = False) -> bytes:
    """Undo `Transfer-Encoding: chunked` (RFC 9112 section 7.1); chunk extensions and trailers ignored."""
    out = bytearray()
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            if allow_truncated:
                return bytes(out)
            raise BodyDecodeError("bad_chunked_encoding", f"no chunk-size line at byte {position}")
        size_field = body[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise BodyDecodeError("bad_chunked_encoding", f"chunk size {size_field[:20]!r} is not hex") from None
        if size == 0:
            return bytes(out)
        start = line_end + 2
        if start + size > len(body) and not allow_truncated:
            raise BodyDecodeError("bad_chunked_encoding", f"chunk of {size} bytes runs past the body end")
        out += body[start : start + size]
        position = start + size + 2


def _inflate(body: bytes, wbits: int, max_bytes: int, allow_truncated: bool) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(body, max_bytes + 1)
    if len(out) > max_bytes:
        raise BodyDecodeError("page_too_large", f"decodes to more than {max_bytes} bytes")
    if not decompressor.eof and not allow_truncated:
        raise BodyDecodeError("bad_content_encoding", "compressed stream ends early")
    return out


def _decode_one(body: bytes, coding: str, max_bytes: int, allow_truncated: bool) -> bytes:
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, allow_truncated)
        if coding == "deflate":  # RFC 9110 means zlib format; some servers send raw deflate
            try:
                return _inflate(body, zlib.MAX_WBITS, max_bytes, allow_truncated)
            except zlib.error:
                return _inflate(body, -zlib.MAX_WBITS, max_bytes, allow_truncated)
        if coding == "br":
            import brotli

            decompressor = brotli.Decompressor()
            out = decompressor.process(body, output_buffer_limit=max_bytes + 1)
            if len(out) > max_bytes:
                raise BodyDecodeError("page_too_large", f"decodes to more than {max_bytes} bytes")
            if not decompressor.is_finished() and not allow_truncated:
                raise BodyDecodeError("bad_content_encoding", "compressed stream ends early")
            return out
    except (zlib.error, OSError) as exc:
        raise BodyDecodeError("bad_content_encoding", f"{coding}: {exc}") from None
    except BodyDecodeError:
        raise
    except Exception as exc:  # brotli raises its own error type
        raise BodyDecodeError("bad_content_encoding", f"{coding}: {type(exc).__name__}: {exc}") from None
    raise BodyDecodeError("unsupported_content_encoding", f"content encoding {coding!r}")


def decode_body(
    body: bytes,
    transfer_encoding: str | None,
    content_encoding: str | None,
    max_bytes: int,
    allow_truncated: bool = False,
) -> bytes:
    """The payload as the server meant it. Raises BodyDecodeError (with a dead-letter reason).

    `max_bytes` bounds the decoded size, so a compression bomb stops at the cap instead of filling
    the worker's memory. `allow_truncated` decodes what there is of a cut (WARC-Truncated) payload.
    """
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        body = dechunk(body, allow_truncated)
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):  # applied in order listed, so undone last-first
        if coding != "identity":
            body = _decode_one(body, coding, max_bytes, allow_truncated)
    if len(body) > max_bytes:
        raise BodyDecodeError("page_too_large", f"{len(body)} bytes > {max_bytes}")
    return body
