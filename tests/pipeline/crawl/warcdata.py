"""WARC bytes made in the test: records, HTTP responses and the three file layouts fastwarc reads."""

from __future__ import annotations

import gzip
import hashlib
import uuid


def record(record_type: str, block: bytes, url: str = "https://site.example/", date: str = "2024-01-01T00:00:00Z",
           extra: dict[str, str] | None = None, content_type: str | None = None) -> bytes:  # fmt: skip
    record_id = hashlib.sha1(f"{record_type}{url}{date}{len(block)}".encode()).hexdigest()
    headers = {
        "WARC-Type": record_type,
        "WARC-Record-ID": f"<urn:uuid:{uuid.UUID(record_id[:32])}>",
        "WARC-Date": date,
        "WARC-Target-URI": url,
        "Content-Type": content_type
        or ("application/http; msgtype=response" if record_type == "response" else "text/plain"),
        **(extra or {}),
        "Content-Length": str(len(block)),
    }
    head = "WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + block + b"\r\n\r\n"


def http(body: bytes, status: int = 200, content_type: str | None = "text/html; charset=utf-8",
         headers: dict[str, str] | None = None) -> bytes:  # fmt: skip
    lines = [f"HTTP/1.1 {status} X"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def response(body: bytes, url: str = "https://site.example/", date: str = "2024-01-01T00:00:00Z",
             extra: dict[str, str] | None = None, **http_args: object) -> bytes:  # fmt: skip
    return record("response", http(body, **http_args), url, date, extra)  # type: ignore[arg-type]


def per_record_gzip(records: list[bytes]) -> bytes:
    return b"".join(gzip.compress(r, mtime=0) for r in records)


def whole_gzip(records: list[bytes]) -> bytes:
    return gzip.compress(b"".join(records), mtime=0)


def page(title: str, *paragraphs: str, lang: str = "en", furniture: bool = True) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    nav = '<nav class="menu"><a href="/">Home</a> <a href="/a">About us</a></nav>' if furniture else ""
    foot = "<footer><p>© 2024 Site Example. All rights reserved.</p></footer>" if furniture else ""
    return (f'<!doctype html><html lang="{lang}"><head><title>{title}</title></head><body>{nav}'
            f"<article><h1>{title}</h1>{body}</article>{foot}</body></html>")  # fmt: skip
