"""Grouping stages decide on keys; the documents wait in spill files, not in the runner's shuffle.

    docs ─► Spill (each doc written once; its keys computed while its text is at hand)
              │ KeyedDoc (id, place in the spill file, bytes, keys: no text)
              ▼
            exact_dedupe ─► near_dedupe ─► ...      each on KeyedDocs: {kept, removals, stats}
              │ one outcome per spilled row: kept (signals to add) or removed (stage, reason, detail)
              ▼
            group outcomes by spill file ─► read the file back ─► kept docs, rejected rows

Exact dedupe used to group whole documents by hash and near dedupe joined whole documents with
their verdicts: two shuffles of the corpus, which Beam's in-process runner holds in memory (peak
memory grew ~6 MB per MB of input). Now only keys are shuffled (about a tenth of a document's
size with a MinHash signature, less without), and outcomes travel grouped by spill file, so no
step holds more than one spill file's outcomes. Every spilled row must get exactly one outcome;
one missing or repeated fails the run rather than losing or doubling a document.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from gemmaflow.pipeline.records import rejected_row
from gemmaflow.pipeline.spill import SpillWriter, read_spill
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, Document, utf8_len
from gemmaflow.pipeline.stats import StageCounts

ROWS_PER_SPILL_FILE = 2000  # outcomes held per read-back step, and the unit of work it spreads over workers


@dataclass(frozen=True)
class KeyedDoc:
    """What a grouping stage sees of a document: where it waits, who it is, its size and its keys."""

    spill_id: str
    row: int
    id: str
    file: str  # provenance: input file and position, unique per document
    position: int
    nbytes: int  # UTF-8 bytes of its text, for the stage's counts
    keys: dict[str, Any]  # grouping stage name -> what that stage computed from the text
    signals: dict[str, float] = field(default_factory=dict)  # what grouping stages add to the document

    def order(self) -> tuple[str, str, int]:
        """Survivor order: smallest id, then input file and position (runner-independent)."""
        return self.id, self.file, self.position

    def with_signal(self, name: str, value: float) -> KeyedDoc:
        return dataclasses.replace(self, signals={**self.signals, name: value})


@dataclass(frozen=True)
class Removal:
    """A grouping stage's verdict on one spilled document: dropped, with its reason and detail."""

    spill_id: str
    row: int
    stage: str
    reason: str
    detail: str


class GroupingStage(beam.PTransform):
    """A stage that needs the whole corpus's keys to drop a document.

    `key_of` runs where the document's text is (the spill step) and returns what the stage needs
    later; `expand` takes KeyedDocs and returns `{kept: KeyedDocs, rejected: Removals, stats}`.
    """

    name: str

    def key_of(self, doc: Document, counts: StageCounts) -> Any:
        raise NotImplementedError

    def on_documents(self, spill_folder: str) -> GroupOnKeys:
        """This stage alone as a transform of documents, as a job's chain applies it."""
        return GroupOnKeys([(type(self).__name__, self)], spill_folder)


class _SpillDoFn(beam.DoFn):
    def __init__(self, folder: str, stages: Sequence[GroupingStage], rows_per_file: int) -> None:
        self.folder = folder
        self.stages = stages
        self.rows_per_file = rows_per_file
        self.writer: SpillWriter | None = None
        self.counts: dict[str, StageCounts] = {}

    def start_bundle(self) -> None:
        self.writer = None
        self.counts = {stage.name: StageCounts(stage.name) for stage in self.stages}

    def process(self, doc: Document) -> Iterator[KeyedDoc]:
        if self.writer is not None and self.writer.rows >= self.rows_per_file:
            self.writer.close()
            self.writer = None
        if self.writer is None:
            self.writer = SpillWriter(self.folder)
        keys = {}
        for stage in self.stages:
            counts = self.counts[stage.name]
            start = time.perf_counter()
            keys[stage.name] = stage.key_of(doc, counts)
            counts.seconds += time.perf_counter() - start
        provenance = doc.get("provenance") or {}
        row = self.writer.write(doc)
        yield KeyedDoc(
            self.writer.spill_id,
            row,
            doc["id"],
            provenance.get("file") or "",
            provenance.get("position") or 0,
            utf8_len(doc["text"]),
            keys,
        )

    def finish_bundle(self) -> Iterator[Any]:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        for counts in self.counts.values():
            if counts.seconds or counts.extra:
                yield beam.pvalue.TaggedOutput(STATS, GlobalWindows.windowed_value(counts))


def _kept_outcome(keyed: KeyedDoc) -> tuple[str, tuple[int, dict[str, float]]]:
    return keyed.spill_id, (keyed.row, keyed.signals)


def _removal_outcome(removal: Removal) -> tuple[str, tuple[int, Removal]]:
    return removal.spill_id, (removal.row, removal)


class _ReadBackDoFn(beam.DoFn):
    """One spill file's documents, each routed by its outcome."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def process(self, element: tuple[str, Iterable[tuple[int, Any]]]) -> Iterator[Any]:
        spill_id, outcomes = element
        decided: dict[int, Any] = {}
        for row, outcome in outcomes:
            if row in decided:
                raise RuntimeError(f"spill file {spill_id}: row {row} was decided twice")
            decided[row] = outcome
        for row, doc in enumerate(read_spill(self.folder, spill_id)):
            outcome = decided.pop(row, None)
            if outcome is None:
                raise RuntimeError(f"spill file {spill_id}: document {doc['id']!r} (row {row}) got no outcome")
            if isinstance(outcome, Removal):
                yield beam.pvalue.TaggedOutput(
                    REJECTED, rejected_row(doc, outcome.stage, outcome.reason, outcome.detail)
                )
            else:
                doc["signals"].update(outcome)
                yield doc
        if decided:
            raise RuntimeError(f"spill file {spill_id}: outcomes for {len(decided)} rows it does not hold")


class GroupOnKeys(beam.PTransform):
    """Consecutive grouping stages, applied in order to the documents' keys (see the module docstring)."""

    def __init__(
        self, stages: Sequence[tuple[str, GroupingStage]], folder: str, rows_per_file: int = ROWS_PER_SPILL_FILE
    ) -> None:
        super().__init__()
        self.stages = stages  # (step label, stage)
        self.folder = folder
        self.rows_per_file = rows_per_file

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        stages = [stage for _, stage in self.stages]
        spilled = docs | "Spill" >> beam.ParDo(_SpillDoFn(self.folder, stages, self.rows_per_file)).with_outputs(
            STATS, main="keyed"
        )
        keyed, stats, outcomes = spilled["keyed"], [spilled[STATS]], []
        for label, stage in self.stages:
            result = keyed | label >> stage
            keyed = result[KEPT]
            stats.append(result[STATS])
            outcomes.append(result[REJECTED] | f"{label}Removals" >> beam.Map(_removal_outcome))
        outcomes.append(keyed | "KeptOutcomes" >> beam.Map(_kept_outcome))
        routed = (
            outcomes
            | "GatherOutcomes" >> beam.Flatten()
            | "GroupBySpillFile" >> beam.GroupByKey()
            | "ReadBack" >> beam.ParDo(_ReadBackDoFn(self.folder)).with_outputs(REJECTED, main=KEPT)
        )
        return {KEPT: routed[KEPT], REJECTED: routed[REJECTED], STATS: stats | "GatherStats" >> beam.Flatten()}
