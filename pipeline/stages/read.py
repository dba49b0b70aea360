"""Beam stage: read JSONL (plain, .gz, .zst) and Parquet files into documents, dead-lettering bad records.

Files are listed when the pipeline is built (so a glob that matches nothing fails at once, naming
the glob) and read one file per element after a reshuffle, through Beam's filesystems, so local
paths and gs:// work alike.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from typing import IO, Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.config import ReadConfig
from gemmaflow.pipeline.records import DeadLetter, document_from_record, parse_json_line, rejected_row
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS, CountingDoFn, utf8_len
from gemmaflow.pipeline.stats import length_key

PARQUET_SUFFIXES = (".parquet", ".pq")


class InputNotFoundError(FileNotFoundError):
    """The input pattern matched no file."""


def match_inputs(patterns: list[str]) -> list[str]:
    """Expand each glob through Beam's filesystems; every pattern must match at least one file."""
    paths: set[str] = set()
    for pattern in patterns:
        matched = [m.path for result in FileSystems.match([pattern]) for m in result.metadata_list]
        if not matched:
            raise InputNotFoundError(f"input pattern matched no files: {pattern}")
        paths.update(matched)
    return sorted(paths)


def open_lines(raw: IO[bytes], path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.endswith(".zst") or path.endswith(".zstd"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return raw


class _ReadFileDoFn(CountingDoFn):
    def __init__(self, config: ReadConfig, config_fingerprint: str) -> None:
        super().__init__("read")
        self.config = config
        self.fingerprint = config_fingerprint

    def process(self, path: str) -> Iterator[Any]:
        position = 0
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                if path.endswith(PARQUET_SUFFIXES):
                    for position, record in enumerate(self._parquet_records(raw)):
                        parsed = document_from_record(
                            record, path, position, self.fingerprint, self.config.text_field
                        )
                        yield from self._emit(parsed, utf8_len(parsed["text"]) if isinstance(parsed, dict) else 0)
                else:
                    for position, line in enumerate(open_lines(raw, path)):
                        if not line.strip():
                            self.counts.tally("blank_lines")
                            continue
                        if len(line) > self.config.max_document_bytes:
                            yield from self._too_large(line, path, position)
                            continue
                        yield from self._emit(
                            parse_json_line(line, path, position, self.fingerprint, self.config.text_field),
                            len(line),
                        )
        except Exception as exc:  # an unreadable file is a dead letter, not a crashed run
            self.counts.record_in(0)
            self.counts.record_dead("unreadable_file")
            error = DeadLetter(path, position, "unreadable_file", f"{type(exc).__name__}: {exc}", "")
            yield beam.pvalue.TaggedOutput(DEAD, error.to_row())

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

    def _too_large(self, line: bytes, path: str, position: int) -> Iterator[Any]:
        parsed = parse_json_line(line, path, position, self.fingerprint, self.config.text_field)
        self.counts.record_in(len(line))
        if isinstance(parsed, DeadLetter):
            self.counts.record_dead(parsed.reason)
            yield beam.pvalue.TaggedOutput(DEAD, parsed.to_row())
            return
        self.counts.record_dropped("document_too_large")
        detail = f"{len(line)} bytes > max_document_bytes {self.config.max_document_bytes}"
        yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(parsed, "read", "document_too_large", detail))


class ReadDocuments(beam.PTransform):
    """Files (already matched) -> documents, with `dead`, `rejected` and `stats` outputs."""

    def __init__(self, paths: list[str], config: ReadConfig, config_fingerprint: str) -> None:
        super().__init__()
        self.paths = paths
        self.config = config
        self.fingerprint = config_fingerprint

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        outputs = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ParseRecords" >> beam.ParDo(_ReadFileDoFn(self.config, self.fingerprint)).with_outputs(
                STATS, REJECTED, DEAD, main=KEPT
            )
        )
        docs = outputs[KEPT]
        if self.config.rebalance:
            docs = docs | "SpreadDocuments" >> beam.Reshuffle()
        return {KEPT: docs, REJECTED: outputs[REJECTED], DEAD: outputs[DEAD], STATS: outputs[STATS]}
