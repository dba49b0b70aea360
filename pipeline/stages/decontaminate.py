"""Beam stage: drop (or redact) documents that contain a benchmark item, the n-gram index a side input.

The benchmark files are listed when the pipeline is built (a glob that matches nothing fails
before any data is read), read by the runner, and combined into one `BenchmarkIndex` that every
worker receives once as a singleton side input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.config import DecontaminationConfig
from gemmaflow.pipeline.decontaminate import (
    BenchmarkIndex,
    BenchmarkItem,
    benchmark_name,
    covered_words,
    item_from_line,
    redact,
)
from gemmaflow.pipeline.record_text import TURNS, matched_text
from gemmaflow.pipeline.shingles import words
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, Document, DocumentStageDoFn, Verdict
from gemmaflow.pipeline.stages.read import InputNotFoundError, match_inputs

STAGE = "decontaminate"
REASON = "benchmark_contamination"


def read_benchmark(path: str, config: DecontaminationConfig) -> Iterator[BenchmarkItem]:
    """The items of one benchmark JSONL file (compression from the extension: .gz, .zst, .bz2)."""
    name = benchmark_name(path)
    with FileSystems.open(path) as handle:
        for position, line in enumerate(handle):
            item = item_from_line(line.decode("utf-8"), name, position, config.fields, config.id_field)
            if item is not None:
                yield item


class _IndexFn(beam.CombineFn):
    """Gathers every item, then builds the index once (sorted, so any arrival order gives the same one)."""

    def __init__(self, ngram: int, min_ngram: int) -> None:
        super().__init__()
        self.ngram = ngram
        self.min_ngram = min_ngram

    def create_accumulator(self) -> list[BenchmarkItem]:
        return []

    def add_input(self, acc: list[BenchmarkItem], item: BenchmarkItem) -> list[BenchmarkItem]:
        acc.append(item)
        return acc

    def merge_accumulators(self, accs: Iterable[list[BenchmarkItem]]) -> list[BenchmarkItem]:
        return [item for acc in accs for item in acc]

    def extract_output(self, acc: list[BenchmarkItem]) -> BenchmarkIndex:
        return BenchmarkIndex.build(acc, self.ngram, self.min_ngram)


class _DecontaminateDoFn(DocumentStageDoFn):
    def __init__(self, config: DecontaminationConfig) -> None:
        super().__init__(STAGE)
        self.config = config
        self.index: BenchmarkIndex | None = None

    def process(self, doc: Document, index: BenchmarkIndex) -> Iterator[Any]:  # type: ignore[override]
        # The side input arrives with each element (the runner caches it per worker); judge() reads it.
        self.index = index
        yield from super().process(doc)

    def judge(self, doc: Document) -> Verdict:
        assert self.index is not None, "process() sets the index"
        match = self.index.match(matched_text(doc))
        if match is None:
            return None
        benchmark, item_id = match.benchmark, match.item_id
        doc["signals"]["decontaminate.matched_ngrams"] = float(match.ngrams)
        # A document that is nothing but benchmark text is dropped even when redacting. A chat record
        # (SFT) is always dropped: a prompt with a passage cut out no longer asks what its answer answers.
        if (self.config.action == "redact" and TURNS not in doc
                and covered_words(match.word_ranges) < len(words(doc["text"]))):
            doc["text"] = redact(doc["text"], match.word_ranges, self.config.redaction_marker)
            self.counts.tally(f"redacted.{benchmark}")
            return None
        self.counts.tally(f"contaminated.{benchmark}")
        return REASON, f"benchmark={benchmark} item={item_id} ngrams={match.ngrams}"


class Decontaminate(beam.PTransform):
    """Documents sharing a word n-gram (13 by default) with a benchmark item are dropped or redacted."""

    def __init__(self, config: DecontaminationConfig) -> None:
        super().__init__()
        self.config = config
        try:
            self.paths = match_inputs(list(config.benchmarks))
        except InputNotFoundError as exc:
            raise InputNotFoundError(f"decontamination.benchmarks: {exc}") from None

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self.config
        index = (
            docs.pipeline
            | "ListBenchmarks" >> beam.Create(self.paths)
            | "ReadBenchmarkItems" >> beam.FlatMap(read_benchmark, config)
            | "IndexBenchmarks" >> beam.CombineGlobally(_IndexFn(config.ngram, config.min_ngram))
        )
        outputs = docs | "MatchBenchmarks" >> beam.ParDo(
            _DecontaminateDoFn(config), index=beam.pvalue.AsSingleton(index)
        ).with_outputs(STATS, REJECTED, main=KEPT)
        return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED], STATS: outputs[STATS]}
