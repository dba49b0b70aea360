"""WARC framing: records out of a stream, one at a time, with what went wrong said instead of raised.

fastwarc (the resiliparse project's WARC library) reads WARC 1.0/1.1, plain, gzip per record or
gzip as a whole, and streams: one record's payload is in memory at a time, read up to a cap. It
frames records 3.3x faster than warcio (0.090 against 0.301 CPU-seconds for 6,518 records of a
Common-Crawl-shaped crawl, benchmarks/crawl_extract.py), which is why it reads here. HTTP payloads
are decoded by pipeline/crawl/http.py, not by fastwarc (see there why).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from fastwarc.warc import ArchiveIterator

# The dead-letter reasons of framing problems
NOT_A_WARC_FILE = "not_a_warc_file"  # not a single record could be framed
INVALID_WARC_HEADER = "invalid_warc_header"  # garbage where the next record should start
TRUNCATED_RECORD = "truncated_record"  # the file ends inside a record's block


class WarcRecord:
    """One framed record, valid until the next is read. Headers are read from fastwarc on demand:
    most records of a crawl (requests, metadata) are skipped on their type alone."""

    __slots__ = ("_http_headers", "_record", "offset", "record_type")

    def __init__(self, record: Any) -> None:
        self._record = record
        self.record_type: str = str(record.record_type)  # the enum prints as its WARC-Type name
        self.offset: int = record.stream_pos  # byte offset in the (compressed) file; see FramingError
        self._http_headers: dict[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self._record.headers.get(name)

    @property
    def headers(self) -> dict[str, str]:
        """The WARC headers, names as written."""
        return {str(name): str(value) for name, value in self._record.headers.items()}

    @property
    def http_status(self) -> int | None:
        """The HTTP status of a parsed HTTP response; None for other records or an unparsable one."""
        parsed = self._record.http_headers if self._record.is_http else None
        return None if parsed is None else parsed.status_code

    @property
    def http_headers(self) -> dict[str, str]:
        """HTTP headers, names lower-cased ({} for records that are not HTTP)."""
        if self._http_headers is None:
            parsed = self._record.http_headers if self._record.is_http else None
            items = parsed.items() if parsed is not None else ()
            self._http_headers = {str(name).lower(): str(value) for name, value in items}
        return self._http_headers

    @property
    def declared_length(self) -> int:
        """The payload length the record declares (Content-Length less the HTTP headers)."""
        return self._record.content_length

    def read_payload(self, limit: int) -> bytes:
        """Up to `limit` bytes of the payload (after the HTTP headers, still transfer/content-encoded)."""
        return self._record.reader.read(limit)


@dataclass(frozen=True)
class FramingError:
    """The stream could not be framed further: a dead letter for the file, at `offset`."""

    reason: str
    offset: int
    detail: str


def iter_records(stream: IO[bytes]) -> Iterator[WarcRecord | FramingError]:
    """Every record of `stream`, then at most one FramingError that ends the iteration.

    A non-empty stream that frames no record at all (a file cut inside its first gzip header, a
    different format) also ends in a FramingError: a reader never returns "nothing" silently.
    """
    count = 0
    last_offset = 0
    try:
        for record in ArchiveIterator(stream, parse_http=True, verify_digests=False):
            count += 1
            last_offset = record.stream_pos
            yield WarcRecord(record)
    except OSError as exc:  # fastwarc: "Invalid WARC header" for anything it cannot frame
        reason = INVALID_WARC_HEADER if count else NOT_A_WARC_FILE
        yield FramingError(reason, last_offset, f"after {count} records: {exc}")
        return
    if count == 0 and _has_bytes(stream):
        yield FramingError(NOT_A_WARC_FILE, 0, "no WARC record could be read (cut or not a WARC file)")


def _has_bytes(stream: IO[bytes]) -> bool:
    try:
        stream.seek(0)
        return bool(stream.read(1))
    except (OSError, ValueError):
        return True  # unseekable and framed nothing: assume it held something
