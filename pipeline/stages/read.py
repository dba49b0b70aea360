"""Beam stage: read JSONL (plain, .gz, .zst), Parquet, WARC and WET files into documents,
dead-lettering bad records.

Files are listed when the pipeline is built (so a glob that matches nothing fails at once, naming
the glob) and read through Beam's filesystems, so local paths and gs:// work alike: a big plain
JSONL file in ranges of whole lines (`read.split_bytes`), every other file whole, the ranges
spread over the workers by a reshuffle. Crawl files stream record by record (pipeline/crawl/documents.py);
records that are not pages are counted in the read stage's `extra` as `crawl.skipped.<reason>`,
and every record is counted once: crawl.records = documents in + records skipped. When the input
holds crawl files, the `url_dedupe` stage follows the read stage.
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.run_markers import refusal, unfinished_run
from gemmaflow.pipeline.config import CrawlConfig, InputFormat, ReadConfig
from gemmaflow.pipeline.crawl.documents import Dropped, Event, Skipped, warc_events, wet_events
from gemmaflow.pipeline.crawl.urls import UrlFilter
from gemmaflow.pipeline.records import (
    RAW_PREVIEW_CHARS,
    DeadLetter,
    document_from_record,
    parse_json_line,
    rejected_row,
)
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS, CountingDoFn, utf8_len
from gemmaflow.pipeline.stages.url_dedupe import UrlDedupe
from gemmaflow.pipeline.stats import length_key

PARQUET_SUFFIXES = (".parquet", ".pq")
WET_SUFFIXES = (".wet", ".wet.gz")
WARC_SUFFIXES = (".warc", ".warc.gz")
CRAWL_FORMATS = ("warc", "wet")


def file_format(path: str, configured: InputFormat = "auto") -> InputFormat:
    """The format `path` is read as: `configured`, or for auto the one its name says (else JSONL)."""
    if configured != "auto":
        return configured
    name = path.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(WET_SUFFIXES):
        return "wet"
    if name.endswith(WARC_SUFFIXES):
        return "warc"
    return "jsonl"


def has_crawl_input(paths: list[str], configured: InputFormat = "auto") -> bool:
    return any(file_format(path, configured) in CRAWL_FORMATS for path in paths)


class InputNotFoundError(FileNotFoundError):
    """The input pattern matched no file, or a file of a run that did not finish."""


def match_inputs(patterns: list[str]) -> list[str]:
    """Expand each glob through Beam's filesystems; every pattern must match at least one file."""
    paths: set[str] = set()
    for pattern in patterns:
        matched = [m.path for result in FileSystems.match([pattern]) for m in result.metadata_list]
        if not matched:
            raise InputNotFoundError(f"input pattern matched no files: {pattern}")
        paths.update(matched)
    for path in sorted(paths):
        run = unfinished_run(path)
        if run is not None:
            raise InputNotFoundError(refusal(path, run))
    return sorted(paths)


def open_lines(raw: IO[bytes], path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.endswith(".zst") or path.endswith(".zstd"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return raw


SKIP_CHUNK = 1 << 20  # bytes read at a time while skipping the rest of an oversized line
SCAN_CHUNK = 1 << 20  # bytes read at a time while finding where a file's ranges start


@dataclass(frozen=True)
class FileRange:
    """A run of whole lines of one file: what one read step handles."""

    path: str
    start: int = 0  # byte offset of its first line
    end: int | None = None  # byte offset after its last line; None: to the end of the file
    first_line: int = 0  # the first line's number in the file: positions stay line numbers


def is_splittable(path: str, configured: InputFormat = "auto") -> bool:
    """Plain JSONL can be read from any line start; compressed streams, Parquet and crawls cannot."""
    return file_format(path, configured) == "jsonl" and not path.endswith((".gz", ".zst", ".zstd"))


def line_ranges(stream: IO[bytes], path: str, split_bytes: int) -> Iterator[FileRange]:
    """Ranges of about `split_bytes`, each ending at a line end, with the number of its first line.

    One sequential pass counting newlines (memory-speed); the lines are parsed later, by the read
    steps, in parallel.
    """
    start, first_line, lines, offset, target = 0, 0, 0, 0, split_bytes
    while chunk := stream.read(SCAN_CHUNK):
        while target < offset + len(chunk):
            cut = chunk.find(b"\n", max(0, target - offset))
            if cut < 0:
                break
            end = offset + cut + 1
            yield FileRange(path, start, end, first_line)
            start, first_line = end, lines + chunk.count(b"\n", 0, cut + 1)
            target = end + split_bytes
        lines += chunk.count(b"\n")
        offset += len(chunk)
    if start < offset or start == 0:
        yield FileRange(path, start, None, first_line)


def lines_in_range(stream: IO[bytes], limit: int, length: int | None) -> Iterator[bytes | OversizedLine]:
    """`bounded_lines` of `stream` (already at the range's start), stopping after `length` bytes."""
    lines, consumed = bounded_lines(stream, limit), 0
    while length is None or consumed < length:  # never reads the next range's first line
        line = next(lines, None)
        if line is None:
            return
        consumed += line.length if isinstance(line, OversizedLine) else len(line)
        yield line


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the limit: its first `limit` bytes and its whole length, never more in memory."""

    prefix: bytes
    length: int


def bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes | OversizedLine]:
    """The lines of `stream`, each read with at most `limit` + 1 bytes in memory.

    A longer line is skipped in chunks and comes out as an OversizedLine: a 1 GiB line in a 32 kB
    .zst file used to peak at 2.3 GB reading it whole before the size check.
    """
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or (line.endswith(b"\n") and len(line) == limit + 1 and limit == 0):
            yield line
            continue
        length = len(line)
        rest = line
        while not rest.endswith(b"\n"):
            rest = stream.readline(SKIP_CHUNK)
            if not rest:
                break
            length += len(rest)
        yield OversizedLine(line[:limit], length)


class _ReadFileDoFn(CountingDoFn):
    def __init__(self, config: ReadConfig, crawl: CrawlConfig, config_fingerprint: str) -> None:
        super().__init__("read")
        self.config = config
        self.crawl = crawl
        self.fingerprint = config_fingerprint
        self.url_filter = UrlFilter()

    def setup(self) -> None:
        self.url_filter = self.crawl.url_filter()

    def process(self, where: FileRange) -> Iterator[Any]:
        path, position = where.path, where.first_line
        fmt = file_format(path, self.config.format)
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                if fmt in CRAWL_FORMATS:
                    yield from self._route_crawl(self._crawl_events(raw, path, fmt))
                elif fmt == "parquet":
                    for position, record in enumerate(self._parquet_records(raw)):
                        parsed = document_from_record(record, path, position, self.fingerprint, self.config.text_field)
                        yield from self._emit(parsed, utf8_len(parsed["text"]) if isinstance(parsed, dict) else 0)
                else:
                    limit = self.config.max_document_bytes
                    raw.seek(where.start)
                    length = None if where.end is None else where.end - where.start
                    lines = lines_in_range(open_lines(raw, path), limit, length)
                    for position, line in enumerate(lines, start=where.first_line):
                        if isinstance(line, OversizedLine):
                            yield from self._too_large(line, path, position)
                            continue
                        if not line.strip():
                            self.counts.tally("blank_lines")
                            continue
                        yield from self._emit(
                            parse_json_line(line, path, position, self.fingerprint, self.config.text_field),
                            len(line),
                        )
        except Exception as exc:  # an unreadable file is a dead letter, not a crashed run
            if fmt in CRAWL_FORMATS:
                self.counts.tally("crawl.records")
            self.counts.record_in(0)
            self.counts.record_dead("unreadable_file")
            error = DeadLetter(path, position, "unreadable_file", f"{type(exc).__name__}: {exc}", "")
            yield beam.pvalue.TaggedOutput(DEAD, error.to_row())

    def _crawl_events(self, raw: IO[bytes], path: str, fmt: InputFormat) -> Iterator[Event]:
        if fmt == "wet":
            return wet_events(raw, path, self.url_filter, self.fingerprint, self.config.max_document_bytes)
        return warc_events(raw, path, self.crawl, self.url_filter, self.fingerprint)

    def _route_crawl(self, events: Iterator[Event]) -> Iterator[Any]:
        started = time.perf_counter()
        for event in events:
            self.counts.seconds += time.perf_counter() - started  # reading, decoding, extracting this record
            self.counts.tally("crawl.records")
            if isinstance(event, Skipped):
                self.counts.tally(f"crawl.skipped.{event.reason}")
            elif isinstance(event, DeadLetter):
                yield from self._emit(event, 0)
            elif isinstance(event, Dropped):
                self.counts.record_in(event.payload_bytes)
                self.counts.record_dropped(event.reason)
                yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(event.doc, "read", event.reason, event.detail))
            else:
                for note in event.notes:
                    self.counts.tally(f"crawl.{note}")
                yield from self._emit(event.doc, event.payload_bytes)
            started = time.perf_counter()  # time spent downstream while suspended is not ours

    @staticmethod
    def _parquet_records(raw: IO[bytes]) -> Iterator[Any]:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(raw).iter_batches(batch_size=1024):
            yield from batch.to_pylist()

    def _emit(self, parsed: dict[str, Any] | DeadLetter, nbytes: int) -> Iterator[Any]:
        self.counts.record_in(nbytes)
        if isinstance(parsed, DeadLetter):
            self.counts.record_dead(parsed.reason)
            yield beam.pvalue.TaggedOutput(DEAD, parsed.to_row())
        else:
            text_bytes = utf8_len(parsed["text"])
            self.counts.record_kept(text_bytes)
            self.counts.tally(length_key(text_bytes))  # the length distribution before curation
            yield parsed

    def _too_large(self, line: OversizedLine, path: str, position: int) -> Iterator[Any]:
        """A dead letter holding a preview: the record is never parsed, nor copied whole to any sink."""
        self.counts.record_in(line.length)
        self.counts.record_dead("document_too_large")
        detail = f"{line.length} bytes > max_document_bytes {self.config.max_document_bytes}"
        preview = line.prefix[: RAW_PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
        yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(path, position, "document_too_large", detail, preview).to_row())


class _PlanRangesDoFn(beam.DoFn):
    """Each file as the ranges its read steps take: several for a big plain JSONL file, else one."""

    def __init__(self, config: ReadConfig) -> None:
        self.config = config

    def process(self, path: str) -> Iterator[FileRange]:
        if not is_splittable(path, self.config.format):
            yield FileRange(path)
            return
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                yield from line_ranges(raw, path, self.config.split_bytes)
        except OSError:
            yield FileRange(path)  # the read step meets the same error and dead-letters the file


class ReadDocuments(beam.PTransform):
    """Files (already matched) -> documents, with `dead`, `rejected` and `stats` outputs.

    `stats` holds the read stage's counts and, when `dedupes_urls`, the url_dedupe stage's.
    """

    def __init__(
        self, paths: list[str], config: ReadConfig, config_fingerprint: str, crawl: CrawlConfig | None = None
    ) -> None:
        super().__init__()
        self.paths = paths
        self.config = config
        self.crawl = crawl or CrawlConfig()
        self.fingerprint = config_fingerprint

    @property
    def dedupes_urls(self) -> bool:
        return dedupes_urls(self.paths, self.config, self.crawl)

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        outputs = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "PlanRanges" >> beam.ParDo(_PlanRangesDoFn(self.config))
            | "SpreadRanges" >> beam.Reshuffle()
            | "ParseRecords"
            >> beam.ParDo(_ReadFileDoFn(self.config, self.crawl, self.fingerprint)).with_outputs(
                STATS, REJECTED, DEAD, main=KEPT
            )
        )
        docs, rejected, stats = outputs[KEPT], outputs[REJECTED], outputs[STATS]
        if self.dedupes_urls:
            deduped = docs | "UrlDedupe" >> UrlDedupe(self.crawl.url_dedupe)  # type: ignore[arg-type]
            docs = deduped[KEPT]
            rejected = (rejected, deduped[REJECTED]) | "GatherReadRejected" >> beam.Flatten()
            stats = (stats, deduped[STATS]) | "GatherReadStats" >> beam.Flatten()
        elif self.config.rebalance:  # url dedupe's grouping already spreads the documents
            docs = docs | "SpreadDocuments" >> beam.Reshuffle()
        return {KEPT: docs, REJECTED: rejected, DEAD: outputs[DEAD], STATS: stats}


def dedupes_urls(paths: list[str], config: ReadConfig, crawl: CrawlConfig) -> bool:
    """Whether reading `paths` runs the url_dedupe stage after the read stage."""
    return crawl.url_dedupe != "off" and has_crawl_input(paths, config.format)
