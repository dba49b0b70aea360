"""What every curate stage shares: per-bundle counting, Beam metrics, and routing of dropped documents.

A stage's DoFn implements `judge()` (or `judge_batch()`) as a thin call into the stage's plain
per-document function; this base does the bookkeeping (datatrove's filter base class does the same
job), so every stage counts in, kept and dropped-by-reason identically.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from gemmaflow.pipeline.progress import SnapshotWriter, StageProgress, progress_of
from gemmaflow.pipeline.records import rejected_row
from gemmaflow.pipeline.stats import StageCounts

KEPT = "kept"
REJECTED = "rejected"
STATS = "stats"
DEAD = "dead"

Document = dict[str, Any]
# A stage's verdict on one document: None keeps it; (reason, detail) drops it.
Verdict = tuple[str, str] | None


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


class CountingDoFn(beam.DoFn):
    """Keeps a StageCounts per bundle and emits it on the `stats` output when the bundle finishes.

    The totals also go to Beam metrics (namespace `gemmaflow.<stage>`) and, when the job helper set
    `progress_folder` (runners on this machine), to live progress snapshots (pipeline/progress.py).
    """

    progress_folder: str | None = None

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.counts = StageCounts(stage)
        self._finished = StageProgress()  # bundles already emitted, for the live totals
        self._snapshots: SnapshotWriter | None = None

    def start_bundle(self) -> None:
        self.counts = StageCounts(self.stage)
        if self.progress_folder and self._snapshots is None:
            self._snapshots = SnapshotWriter(self.progress_folder, self.stage, self._live_totals)

    def _live_totals(self) -> StageProgress:
        totals = progress_of(self.counts)
        totals.add(self._finished)
        return totals

    def finish_bundle(self) -> Iterator[Any]:
        counts = self.counts
        if counts.is_empty():
            return
        namespace = f"gemmaflow.{self.stage}"
        done = progress_of(counts)
        for name, value in done.__dict__.items():
            Metrics.counter(namespace, name).inc(value)
        for reason, n in {**counts.dropped, **counts.dead_lettered, **counts.extra}.items():
            Metrics.counter(namespace, reason).inc(n)
        self._finished.add(done)
        yield beam.pvalue.TaggedOutput(STATS, GlobalWindows.windowed_value(counts))
        self.counts = StageCounts(self.stage)


class DocumentStageDoFn(CountingDoFn):
    """A stage that keeps or drops whole documents. Subclasses implement `judge` or `judge_batch`.

    `judge` may edit the document in place (normalised text, labels, signals) before returning.
    """

    def judge(self, doc: Document) -> Verdict:
        raise NotImplementedError

    def judge_batch(self, docs: Sequence[Document]) -> list[Verdict]:
        return [self.judge(doc) for doc in docs]

    def _route(self, doc: Document, verdict: Verdict) -> Iterator[Any]:
        if verdict is None:
            self.counts.record_kept(utf8_len(doc["text"]))
            yield doc
        else:
            reason, detail = verdict
            self.counts.record_dropped(reason)
            yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(doc, self.stage, reason, detail))

    def process(self, doc: Document) -> Iterator[Any]:
        self.counts.record_in(utf8_len(doc["text"]))
        start = time.perf_counter()
        verdict = self.judge(doc)
        self.counts.seconds += time.perf_counter() - start
        yield from self._route(doc, verdict)


class BatchedDocumentStageDoFn(DocumentStageDoFn):
    """The same, fed lists of documents by `beam.BatchElements` so models can predict in batches."""

    def process(self, docs: Sequence[Document]) -> Iterator[Any]:  # type: ignore[override]
        for doc in docs:
            self.counts.record_in(utf8_len(doc["text"]))
        start = time.perf_counter()
        verdicts = self.judge_batch(docs)
        self.counts.seconds += time.perf_counter() - start
        for doc, verdict in zip(docs, verdicts, strict=True):
            yield from self._route(doc, verdict)


def stage_outputs(pcoll: beam.PCollection, label: str, dofn: DocumentStageDoFn) -> dict[str, beam.PCollection]:
    """Apply a stage DoFn and name its three outputs."""
    outputs = pcoll | label >> beam.ParDo(dofn).with_outputs(STATS, REJECTED, main=KEPT)
    return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED], STATS: outputs[STATS]}
