"""Beam stage: Parquet output through Beam's file sinks (temporary files, then an atomic finalize)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from gemmaflow.pipeline.config import OutputConfig
from gemmaflow.pipeline.stages.base import STATS, CountingDoFn, Document, utf8_len
from gemmaflow.pipeline.stats import language_key, length_key

DATA_DIR = "data"
REJECTED_DIR = "rejected"
DEAD_LETTER_DIR = "dead_letter"
STATS_DIR = "_stats"


class _CountWrittenDoFn(CountingDoFn):
    def __init__(self) -> None:
        super().__init__("write")

    def process(self, doc: Document) -> Iterator[Any]:
        nbytes = utf8_len(doc["text"])
        self.counts.record_in(nbytes)
        self.counts.record_kept(nbytes)
        # Distributions after curation, for the run report (before: read and language stages).
        for key in (length_key(nbytes), language_key(doc["lang"]), f"domain.{doc['domain']}"):
            self.counts.tally(key)
        yield doc


class WriteParquet(beam.PTransform):
    """Write rows with `schema` under `prefix`; used for curated, rejected and dead-letter sinks."""

    def __init__(self, prefix: str, schema: pa.Schema, config: OutputConfig) -> None:
        super().__init__()
        self.prefix = prefix
        self.schema = schema
        self.config = config

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return rows | "WriteShards" >> beam.io.WriteToParquet(
            file_path_prefix=self.prefix,
            schema=self.schema,
            codec=self.config.compression,
            file_name_suffix=".parquet",
            num_shards=self.config.num_shards,
            # A row group every `row_group_size` rows, as the setting says; Beam's default instead
            # buffers 64 MB of rows per open file before writing one, which every worker pays for
            # the curated and the rejected sink alike.
            row_group_buffer_size=1,
            record_batch_size=self.config.row_group_size,
        )


class WriteCurated(beam.PTransform):
    """Count what is written (the `write` stage), then write it; returns the stats output."""

    def __init__(self, prefix: str, schema: pa.Schema, config: OutputConfig) -> None:
        super().__init__()
        self.prefix = prefix
        self.schema = schema
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        counted = docs | "CountWritten" >> beam.ParDo(_CountWrittenDoFn()).with_outputs(STATS, main="docs")
        counted["docs"] | "WriteCuratedShards" >> WriteParquet(self.prefix, self.schema, self.config)
        return {STATS: counted[STATS]}
